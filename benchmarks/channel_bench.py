"""Throughput of each channel model on one core, in Msamples/s (median of repeats after a warm-up).

Timed in CPU seconds of this process (single-threaded), so other jobs on the shared machine do not count;
the wall-clock figure is printed beside it.

Usage: python benchmarks/channel_bench.py [--block-samples N] [--repeats R]
The virtual-RF hub needs >= 20 Msamples/s aggregate for 5 nodes; this prints what each model costs.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from testbed.channel import (  # noqa: E402
    Awgn,
    DcOffset,
    FrequencyOffset,
    IqImbalance,
    Multipath,
    PathLoss,
    PhaseNoise,
    SamplingClockOffset,
    TimingOffset,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2 * args.block_samples, dtype=np.float32).view(np.complex64)
    models = {
        "awgn": Awgn(10.0, rng, occupied_fraction=52 / 64),
        "multipath rms 2 (21 taps)": Multipath(2.0, rng),
        "frequency offset": FrequencyOffset(3_000.0, 2.5e6),
        "timing offset 3.3": TimingOffset(3.3),
        "sampling clock 40 ppm": SamplingClockOffset(40.0),
        "phase noise": PhaseNoise(100.0, 2.5e6, rng),
        "iq imbalance": IqImbalance(0.5, 2.0),
        "dc offset": DcOffset(0.01),
        "path loss": PathLoss(10.0, 2.4e9),
    }
    for name, model in models.items():
        model(x)  # warm-up (numba compile, caches)
        cpu, wall = [], []
        for _ in range(args.repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            model(x)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        msps_cpu, msps_wall = args.block_samples / np.median(cpu) / 1e6, args.block_samples / np.median(wall) / 1e6
        print(f"{name:28s} {msps_cpu:8.1f} Msamples/s (CPU)  {msps_wall:8.1f} (wall)")


if __name__ == "__main__":
    main()
