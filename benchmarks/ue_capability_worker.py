"""The UE's capability measurement as the daemon runs it: in a worker thread, beside an event loop.

For each clock (``thread``: time.thread_time, the UE's choice with one torch thread; ``process``:
time.process_time; ``wall``: time.perf_counter) the default codec's throughput is measured ``--pairs`` times
twice back to back (``measure_codec_throughput``, the function the UE and ``testbed policy bench`` share),
each in a worker thread while the main thread runs a stand-in event loop (a 20 ms wait per pass, as the
UE's ``POLL_S``) and, with ``--pump``, a stand-in radio pump thread keeps about half a core busy with FFTs
(the UE demodulates every receive window while it trains). Prints, per clock, every pair's
``relative_spread = (max - min) / median`` and rates, and the longest gap between two loop passes while
the worker measured (what the loop's heartbeats would see). Clocks take turns pair by pair, so a slow phase
of the machine hits all of them alike.

    python benchmarks/ue_capability_worker.py [--pairs 5] [--threads 1] [--pump] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LOOP_WAIT_S = 0.02  # testbed/node/ue.py POLL_S
PUMP_BLOCK = 1 << 15  # samples per stand-in demodulation FFT
PUMP_IDLE_S = 0.005  # pause after each group of FFTs (about half a core busy here)
CLOCKS: dict[str, Callable[[], float]] = {
    "thread": time.thread_time,
    "process": time.process_time,
    "wall": time.perf_counter,
}


def measure_beside_loop(worker: ThreadPoolExecutor, job: Callable[[], float]) -> tuple[float, float]:
    """Run ``job`` in ``worker`` while this thread loops; (its result, the longest loop gap in s)."""
    done = threading.Event()
    future = worker.submit(job)
    future.add_done_callback(lambda _: done.set())
    last, longest = time.perf_counter(), 0.0
    while not done.wait(LOOP_WAIT_S):
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    return future.result(), max(longest, time.perf_counter() - last)


def pump_load(stop: threading.Event) -> None:
    """Busy like a radio pump: FFTs of a receive window (GIL released inside scipy), then a short pause."""
    import numpy as np
    import scipy.fft

    block = np.random.default_rng(0).standard_normal(PUMP_BLOCK).astype(np.complex64)
    while not stop.is_set():
        for _ in range(8):
            scipy.fft.fft(block)
        stop.wait(PUMP_IDLE_S)


def run(pairs: int, threads: int, pump: bool) -> dict[str, Any]:
    import torch

    from testbed.learning.codec import SemanticCodec
    from testbed.learning.codec_config import CodecConfig

    torch.set_num_threads(threads)
    codec = SemanticCodec(CodecConfig(), torch.Generator().manual_seed(0))
    stop = threading.Event()
    pumping = threading.Thread(target=pump_load, args=(stop,), daemon=True)
    if pump:
        pumping.start()
    try:
        return _measure(codec, pairs, threads, pump)
    finally:
        stop.set()
        if pump:
            pumping.join()  # never leave it inside scipy.fft at interpreter exit (C++ terminate)


def _measure(codec: Any, pairs: int, threads: int, pump: bool) -> dict[str, Any]:
    from testbed.policy.capability import measure_codec_throughput, measurement_clock

    results: dict[str, dict[str, list[float]]] = {name: {"spread": [], "rates": [], "gap_s": []} for name in CLOCKS}
    with ThreadPoolExecutor(max_workers=1) as worker:
        for _ in range(pairs):
            for name, clock in CLOCKS.items():
                rates = []
                for _ in range(2):
                    rate, gap_s = measure_beside_loop(
                        worker, lambda c=clock: measure_codec_throughput(codec, clock=c).samples_per_s
                    )
                    rates.append(rate)
                    results[name]["gap_s"].append(gap_s)
                results[name]["rates"] += rates
                results[name]["spread"].append((max(rates) - min(rates)) / statistics.median(rates))
        ue_clock = worker.submit(measurement_clock).result().__name__
    return {
        "threads": threads,
        "pump": pump,
        "pairs": pairs,
        "ue_clock": ue_clock,
        "clocks": {
            name: {
                "relative_spreads": r["spread"],
                "median_spread": statistics.median(r["spread"]),
                "samples_per_s": r["rates"],
                "longest_loop_gap_s": max(r["gap_s"]),
            }
            for name, r in results.items()
        },
    }


def main() -> int:
    from testbed.cli._output import add_json_flag, emit, format_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="back-to-back pairs per clock")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the UE's clock depends on it)")
    parser.add_argument("--pump", action="store_true", help="a stand-in radio pump thread busy with FFTs")
    add_json_flag(parser)
    args = parser.parse_args()
    result = run(max(1, args.pairs), max(1, args.threads), args.pump)

    def human(r: dict[str, Any]) -> str:
        rows = [
            [name, ", ".join(f"{100 * s:.1f}%" for s in c["relative_spreads"]), f"{100 * c['median_spread']:.1f}%",
             f"{min(c['samples_per_s']):.0f}-{max(c['samples_per_s']):.0f}", 1e3 * c["longest_loop_gap_s"]]
            for name, c in r["clocks"].items()
        ]  # fmt: skip
        pump = "with a busy pump thread" if r["pump"] else "idle pump"
        head = f"{r['threads']} torch thread(s), {pump}; the UE's clock here: {r['ue_clock']}\n"
        return head + format_table(["clock", "spreads", "median", "samples/s", "longest loop gap ms"], rows)

    emit(result, as_json=args.json, human=human)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
