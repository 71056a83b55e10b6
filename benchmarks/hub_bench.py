"""Virtual-RF hub throughput: 5 node processes stream through one hub process; prints Msamples/s.

Each node receives the shared air in windows of ``--window`` samples; in every window one node (round robin)
also transmits a burst of half a window, so every burst crosses 4 links (crystal CFO and clock offset, path
loss) and every window is summed with each receiver's noise. Aggregate traffic = samples the nodes sent to
the hub plus samples the hub delivered to them, per wall-clock second; the figure is the median of repeats.

    python benchmarks/hub_bench.py [--nodes 5] [--seconds 4] [--repeats 3] [--json]
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


def run_once(nodes: int, window: int, windows: int, workdir: Path) -> dict[str, float]:
    scenario = workdir / "bench.toml"
    scenario.write_text(scenario_text(nodes))
    endpoint = f"ipc://{workdir}/hub"
    cli = "import sys; from testbed.cli import main; sys.exit(main())"
    procs = []
    try:
        hub = subprocess.Popen(
            [sys.executable, "-c", cli, "hub", "--scenario", str(scenario), "--endpoint", endpoint, "--json"],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(hub)
        json.loads(hub.stdout.readline())
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
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
    rx = nodes * window * windows
    tx = (window // 2) * windows
    return {
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    windows = max(args.nodes, int(args.seconds * 2.5e6 / args.window))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            runs.append(run_once(args.nodes, args.window, windows, Path(tmp)))
            print(f"repeat {r}: {runs[-1]['aggregate_msps']:.1f} Msamples/s aggregate", file=sys.stderr)
    result = {
        "nodes": args.nodes,
        "window_samples": args.window,
        "simulated_s": windows * args.window / 2.5e6,
        "aggregate_msps_median": statistics.median(r["aggregate_msps"] for r in runs),
        "rx_msps_median": statistics.median(r["rx_msps"] for r in runs),
        "tx_msps_median": statistics.median(r["tx_msps"] for r in runs),
        "runs": runs,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"hub, {args.nodes} nodes: {result['aggregate_msps_median']:.1f} Msamples/s aggregate "
            f"(rx {result['rx_msps_median']:.1f} + tx {result['tx_msps_median']:.1f}), median of {args.repeats}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
