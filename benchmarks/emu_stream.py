"""Virtual Plutos: streaming rate with several boards at once, and PER/SNR through pyadi-iio against the hub.

1. ``stream``: ``testbed emu`` serves a scenario of ``--radios`` boards; one process per board streams RX
   through pyadi-iio (``rx()`` of ``--buffer`` samples, complex values as a lab script gets them) for
   ``--seconds``; board 0 also transmits one buffer in every four. Prints Msamples/s per board (target: 4, the
   Pluto's USB ceiling, with 3 boards at once) and their sum.
2. ``per``: the same OFDM frames (``testbed radio txrx``) from bs to ue-1 over virtual Plutos (pluto backend)
   and over the hub (hub backend) at the same scenario, for a few distances: PER and mean SNR side by side.

    nice python benchmarks/emu_stream.py [--radios 3] [--seconds 10] [--frames 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
RATE_HZ = 2.5e6

CLIENT = """
import sys, time, numpy as np, adi
uri, index, buffer, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sdr = adi.Pluto(uri)
sdr.sample_rate = 2500000
sdr.rx_lo = sdr.tx_lo = 2400000000
sdr.gain_control_mode_chan0 = "manual"
sdr.rx_hardwaregain_chan0 = 30
sdr.rx_buffer_size = buffer
rng = np.random.default_rng(index)
burst = (4000 * (rng.standard_normal(buffer) + 1j * rng.standard_normal(buffer))).astype(np.complex64)
sdr.rx()
print("ready", flush=True)
sys.stdin.readline()
t0, c0, n, k = time.perf_counter(), time.process_time(), 0, 0
while time.perf_counter() - t0 < seconds:
    if index == 0 and k % 4 == 0:
        sdr.tx(burst)
    n += sdr.rx().size
    k += 1
print(n / (time.perf_counter() - t0), n, time.process_time() - c0, flush=True)
"""


def scenario_text(nodes: list[tuple[str, float, float]], seed: int = 1, noise_floor_dbm: float = -90.0) -> str:
    """nodes: (id, x_m, crystal_ppm)."""
    lines = [f"seed = {seed}", f"sample_rate_hz = {RATE_HZ}", f"noise_floor_dbm = {noise_floor_dbm}",
             "wait_for_all_nodes = false"]  # fmt: skip
    for node_id, x_m, ppm in nodes:
        lines += ["[[nodes]]", f'id = "{node_id}"', f"position_m = [{x_m}, 0.0]", f"crystal_ppm = {ppm}"]
    return "\n".join(lines) + "\n"


def start_server(args: list[str]) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "testbed", *args, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=ENV)  # fmt: skip
    return proc, json.loads(proc.stdout.readline())


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def stream(radios: int, seconds: float, buffer: int, workdir: Path) -> dict:
    path = workdir / "stream.toml"
    path.write_text(scenario_text([(f"n{i}", 10.0 * (i + 1), 2.0 * i) for i in range(radios)]))
    server, info = start_server(["emu", str(path)])
    try:
        clients = [
            subprocess.Popen(
                [sys.executable, "-c", CLIENT, info["uris"][f"n{i}"], str(i), str(buffer), str(seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=ENV,
            )  # fmt: skip
            for i in range(radios)
        ]
        for c in clients:
            assert c.stdout.readline().strip() == "ready"
        server_cpu0 = cpu_s(server.pid)
        for c in clients:
            c.stdin.write("go\n")
            c.stdin.flush()
        lines = [c.stdout.readline().split() for c in clients]
        server_cpu = cpu_s(server.pid) - server_cpu0
        for c in clients:
            c.wait(timeout=60)
    finally:
        stop(server)
    rates = [float(line[0]) / 1e6 for line in lines]
    samples = sum(int(line[1]) for line in lines)
    client_cpu = sum(float(line[2]) for line in lines)
    ns_per_sample = 1e9 * (server_cpu + client_cpu) / samples
    return {"radios": radios, "buffer_samples": buffer, "msps_per_radio": rates, "msps_total": sum(rates),
            "msps_min": min(rates), "server_cpu_ns_per_sample": 1e9 * server_cpu / samples,
            "client_cpu_ns_per_sample": 1e9 * client_cpu / samples,
            "msps_per_radio_per_free_core": 1e3 / ns_per_sample / radios,
            "load_average_1min": os.getloadavg()[0]}  # fmt: skip


def txrx(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "testbed", "radio", "txrx", "--rx-gain-db", "30", "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=1200, check=True)
    return json.loads(out.stdout)


def per_vs_hub(
    distances_m: list[float], frames: int, mcs: str, workdir: Path, noise_floor_dbm: float = -90.0
) -> list[dict]:
    """One row per distance; with a noise floor far below the signal the SNR is the TX chain's own floor."""
    rows = []
    for d in distances_m:
        path = workdir / f"per-{d:g}.toml"
        path.write_text(scenario_text([("bs", 0.0, 0.0), ("ue-1", d, 2.0)], seed=3, noise_floor_dbm=noise_floor_dbm))
        common = ["--frames", str(frames), "--mcs", mcs, "--seed", "1"]
        emu_proc, emu_info = start_server(["emu", str(path)])
        try:
            uris = emu_info["uris"]
            pluto = txrx(["--backend", "pluto", "--tx-uri", uris["bs"], "--rx-uri", uris["ue-1"],
                          "--tx-power-dbm", "0", "--sample-rate-hz", str(RATE_HZ), *common])  # fmt: skip
        finally:
            stop(emu_proc)
        hub_proc, hub_info = start_server(["hub", "--scenario", str(path)])
        try:
            hub = txrx(["--backend", "hub", "--endpoint", hub_info["endpoint"], "--tx-node", "bs", "--rx-node", "ue-1",
                        *common])  # fmt: skip
        finally:
            stop(hub_proc)
        from testbed.radio.links import configured_snr_db
        from testbed.radio.scenario import load_scenario

        rows.append({
            "distance_m": d,
            "configured_snr_db": configured_snr_db(load_scenario(path), "bs", "ue-1"),
            "pluto_per": pluto["per"], "hub_per": hub["per"],
            "pluto_snr_db": pluto["snr_db_mean"], "hub_snr_db": hub["snr_db_mean"],
            "snr_gap_db": (pluto["snr_db_mean"] or math.nan) - (hub["snr_db_mean"] or math.nan),
        })  # fmt: skip
    return rows


def tx_scale(frames: int, mcs: str) -> list[dict]:
    """Frames through two virtual Plutos on a noise-free 20 m link, with the Pluto backend's TX scale
    (``TX_NOMINAL``, 2^14: OFDM peaks above +6 dB clip at +-2^15) and with 2^13: what the clipping costs."""
    import threading

    import numpy as np

    import testbed.radio.pluto as pluto
    from testbed import emu
    from testbed.phy import OfdmModem, PhyConfig
    from testbed.radio.base import RadioConfig
    from testbed.radio.scenario import parse_scenario

    sc = parse_scenario(scenario_text([("bs", 0.0, 0.0), ("ue-1", 20.0, 0.0)], noise_floor_dbm=-150.0))
    modem = OfdmModem(PhyConfig(sample_rate_hz=RATE_HZ))
    rng = np.random.default_rng(0)
    payloads = [rng.integers(0, 256, 200, dtype=np.uint8).tobytes() for _ in range(frames)]
    bursts = [modem.modulate(p, mcs, stream_id=0, seq=k) for k, p in enumerate(payloads)]
    slot = max(b.size for b in bursts) + 1000
    cfg = RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=RATE_HZ, tx_power_dbm=0.0, rx_gain_db=30.0)
    rows, nominal = [], pluto.TX_NOMINAL
    for scale in (nominal, nominal / 2):
        pluto.TX_NOMINAL = scale  # the backend reads it per burst; the virtual DAC keeps its own
        try:
            with emu.start(sc) as running:
                tx, rx = pluto.PlutoRadio(running.uris["bs"]), pluto.PlutoRadio(running.uris["ue-1"])
                tx.configure(cfg)
                rx.configure(cfg)
                blocks = 4 + frames * slot // 16384

                def send(tx=tx, blocks=blocks) -> None:
                    origin = tx.receive(2000).end_sample
                    for k, b in enumerate(bursts):
                        tx.transmit(b, at_sample=origin + 20000 + k * slot)
                    for _ in range(blocks):
                        tx.receive(16384)

                thread = threading.Thread(target=send)
                thread.start()
                iq = np.concatenate([rx.receive(16384).iq for _ in range(blocks)])
                thread.join()
                tx.close()
                rx.close()
        finally:
            pluto.TX_NOMINAL = nominal
        found = [f for f in modem.demodulate(iq) if f.stream_id == 0 and f.seq < frames]
        ok = {f.seq for f in found if f.crc_ok and f.payload == payloads[f.seq]}
        rows.append({"tx_scale": scale, "mcs": mcs, "frames_ok": len(ok), "frames": frames,
                     "snr_db_mean": float(np.mean([f.snr_db for f in found])) if found else None})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radios", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--buffer", type=int, default=1 << 16, help="samples per rx() (default %(default)s)")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--mcs", default="16qam-1/2")
    parser.add_argument("--distances-m", default="100,160,200,250", help="bs to ue-1, comma separated")
    parser.add_argument("--skip-per", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--floor", action="store_true",
                        help="add a row at 20 m and a -150 dBm noise floor: the TX chain's own floor")  # fmt: skip
    parser.add_argument("--tx-scale", action="store_true",
                        help="64qam-3/4 on a noise-free link at the backend's TX scale and at half")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = {} if args.skip_stream else {"stream": stream(args.radios, args.seconds, args.buffer, Path(tmp))}
        if not args.skip_per:
            distances = [float(x) for x in args.distances_m.split(",")]
            result["per"] = per_vs_hub(distances, args.frames, args.mcs, Path(tmp))
            result["per_mcs"], result["per_frames"] = args.mcs, args.frames
        if args.tx_scale:
            result["tx_scale"] = tx_scale(args.frames, "64qam-3/4")
        if args.floor:
            result["floor"] = per_vs_hub([20.0], args.frames, args.mcs, Path(tmp), noise_floor_dbm=-150.0)
    result["wall_s"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(result, allow_nan=False, default=lambda v: None))
        return 0
    s = result.get("stream")
    print("" if s is None else f"{s['radios']} virtual Plutos streaming {s['buffer_samples']}-sample buffers: "
          + ", ".join(f"{r:.2f}" for r in s["msps_per_radio"]) + f" MS/s (total {s['msps_total']:.2f}); CPU per "
          f"sample: server {s['server_cpu_ns_per_sample']:.0f} ns, clients {s['client_cpu_ns_per_sample']:.0f} ns "
          f"({s['msps_per_radio_per_free_core']:.2f} MS/s per radio per idle core); "
          f"load average {s['load_average_1min']:.1f}")  # fmt: skip
    for row in result.get("tx_scale", []):
        print(f"TX scale {row['tx_scale']:g}: {row['frames_ok']}/{row['frames']} {row['mcs']} frames, SNR "
              f"{row['snr_db_mean']:.2f} dB")  # fmt: skip
    for row in result.get("per", []) + result.get("floor", []):
        print(f"{row['distance_m']:5g} m, configured {row['configured_snr_db']:5.1f} dB: "
              f"PER pluto {row['pluto_per']:.3f}"
              f" hub {row['hub_per']:.3f}; SNR pluto {row['pluto_snr_db']:.2f} hub {row['hub_snr_db']:.2f} dB "
              f"(gap {row['snr_gap_db']:+.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
