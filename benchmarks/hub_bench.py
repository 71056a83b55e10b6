"""Virtual-RF hub throughput: 5 node processes stream through one hub process; prints Msamples/s.

Each node receives the shared air in windows of ``--window`` samples; in every window one node (round robin)
also transmits a burst of half a window, so every burst crosses 4 links (crystal CFO and clock offset, path
loss) and every window is summed with each receiver's noise. Aggregate traffic = samples the nodes sent to
the hub plus samples the hub delivered to them, per wall-clock second; the figure is the median of repeats.

``--tap``: every repeat runs twice, without and with the raw-IQ tap of every node (testbed/radio/hub_outputs.py)
read by one subscriber process; prints both figures, their ratio (measured in the same run) and the share of
the tapped samples the subscriber got (PUB drops for a subscriber that falls behind).

    python benchmarks/hub_bench.py [--nodes 5] [--seconds 4] [--repeats 3] [--tap] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NODE = """
import sys, time, numpy as np
from testbed.radio.base import RadioConfig
from testbed.radio.hub_client import HubRadio
endpoint, node_id, index, nodes, window, windows = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
rng = np.random.default_rng(index)
burst = ((rng.standard_normal(window // 2) + 1j * rng.standard_normal(window // 2)) / np.sqrt(2)).astype(np.complex64)
with HubRadio(endpoint, node_id, timeout_s=120) as radio:
    radio.configure(RadioConfig(tx_power_dbm=0.0, rx_gain_db=0.0))
    radio.receive(window)  # everyone connected and warm before the clock starts
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    for w in range(1, windows + 1):
        if w % nodes == index:
            radio.transmit(burst, at_sample=w * window + window // 4)
        radio.receive(window)
    print(time.perf_counter() - t0, flush=True)
"""


SUBSCRIBER = """
import sys, zmq
sub = zmq.Context.instance().socket(zmq.SUB)
sub.setsockopt(zmq.SUBSCRIBE, b"")
sub.setsockopt(zmq.RCVHWM, 0)
for endpoint in sys.argv[1:]:
    sub.connect(endpoint)
poller = zmq.Poller()
poller.register(sub, zmq.POLLIN)
poller.register(sys.stdin, zmq.POLLIN)
print("ready", flush=True)
received = 0
while True:
    events = dict(poller.poll())
    if sub in events:
        received += len(sub.recv(copy=False)) // 8
    elif events:
        break
while sub.poll(200):
    received += len(sub.recv(copy=False)) // 8
print(received, flush=True)
"""


def scenario_text(nodes: int) -> str:
    lines = ["seed = 1", "noise_floor_dbm = -90.0"]
    for i in range(nodes):
        lines += [
            "[[nodes]]",
            f'id = "n{i}"',
            f"position_m = [{10.0 * i}, 5.0]",
            f"crystal_ppm = {(-1) ** i * 2.5 * i}",
        ]
    return "\n".join(lines) + "\n"


def run_once(nodes: int, window: int, windows: int, workdir: Path, tap: bool = False) -> dict[str, float]:
    scenario = workdir / "bench.toml"
    scenario.write_text(scenario_text(nodes))
    endpoint = f"ipc://{workdir}/hub"
    cli = "import sys; from testbed.cli import main; sys.exit(main())"
    taps = [f"ipc://{workdir}/tap-n{i}" for i in range(nodes)] if tap else []
    tap_args = [arg for i, t in enumerate(taps) for arg in ("--tap", f"n{i}={t}")]
    procs = []
    try:
        hub_args = ["hub", "--scenario", str(scenario), "--endpoint", endpoint, "--json", *tap_args]
        hub = subprocess.Popen(
            [sys.executable, "-c", cli, *hub_args],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(hub)
        json.loads(hub.stdout.readline())
        subscriber = None
        if taps:
            subscriber = subprocess.Popen(
                [sys.executable, "-c", SUBSCRIBER, *taps], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            procs.append(subscriber)
            assert subscriber.stdout.readline().strip() == "ready"
        args = [str(nodes), str(window), str(windows)]
        clients = [
            subprocess.Popen(
                [sys.executable, "-c", NODE, endpoint, f"n{i}", str(i), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(nodes)
        ]
        procs += clients
        for c in clients:
            assert c.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        for c in clients:
            c.stdin.write("go\n")
            c.stdin.flush()
        for c in clients:
            c.stdout.readline()
        wall_s = time.perf_counter() - t0
        tapped = 0
        if subscriber is not None:
            subscriber.stdin.write("stop\n")
            subscriber.stdin.flush()
            tapped = int(subscriber.stdout.readline())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
    rx = nodes * window * windows
    tx = (window // 2) * windows
    return {
        "tap": tap,
        "tapped_share": tapped / (rx + nodes * window) if tap else None,  # + the warm-up window of each node
        "wall_s": wall_s,
        "rx_msps": rx / wall_s / 1e6,
        "tx_msps": tx / wall_s / 1e6,
        "aggregate_msps": (rx + tx) / wall_s / 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--window", type=int, default=65536, help="samples per receive call")
    parser.add_argument("--seconds", type=float, default=4.0, help="simulated air time per repeat at 2.5 MS/s")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tap", action="store_true", help="also run with every node tapped; report the ratio")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    windows = max(args.nodes, int(args.seconds * 2.5e6 / args.window))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for tap in (False, True) if args.tap else (False,):
                runs.append(run_once(args.nodes, args.window, windows, Path(tmp), tap))
                what = " (tapped)" if tap else ""
                print(f"repeat {r}: {runs[-1]['aggregate_msps']:.1f} Msamples/s aggregate{what}", file=sys.stderr)
    plain = [r for r in runs if not r["tap"]]
    result = {
        "nodes": args.nodes,
        "window_samples": args.window,
        "simulated_s": windows * args.window / 2.5e6,
        "aggregate_msps_median": statistics.median(r["aggregate_msps"] for r in plain),
        "rx_msps_median": statistics.median(r["rx_msps"] for r in plain),
        "tx_msps_median": statistics.median(r["tx_msps"] for r in plain),
        "runs": runs,
    }
    if args.tap:
        tapped = [r for r in runs if r["tap"]]
        result["tapped_aggregate_msps_median"] = statistics.median(r["aggregate_msps"] for r in tapped)
        result["tapped_over_plain"] = result["tapped_aggregate_msps_median"] / result["aggregate_msps_median"]
        result["tapped_share_min"] = min(r["tapped_share"] for r in tapped)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"hub, {args.nodes} nodes: {result['aggregate_msps_median']:.1f} Msamples/s aggregate "
            f"(rx {result['rx_msps_median']:.1f} + tx {result['tx_msps_median']:.1f}), median of {args.repeats}"
        )
        if args.tap:
            print(
                f"with every node tapped: {result['tapped_aggregate_msps_median']:.1f} Msamples/s "
                f"(x{result['tapped_over_plain']:.2f}); the subscriber got >= {100 * result['tapped_share_min']:.1f}% "
                "of the tapped samples"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
