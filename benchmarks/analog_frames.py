"""Analog frames: does the receiver's noise estimate predict the error of what it equalised? And what an
analog frame costs on each medium.

For each SNR, frame length and channel (flat AWGN, or a frequency-selective multipath draw scaled to mean
gain 1), seeded random unit-power values go through the phy medium (real modem, channel models, real
receiver) and the model medium (per-subcarrier zero-forcing noise); it prints the measured NMSE (received
against sent, at the unit power they were sent at), the receiver's mean noise-variance estimate, their
difference, and the CPU milliseconds per frame of each medium.

Usage: PYTHONPATH=. python benchmarks/analog_frames.py [--frames N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from testbed.channel import Awgn, Chain, Multipath  # noqa: E402
from testbed.link.abstraction import subcarrier_snr  # noqa: E402
from testbed.link.analog import ANALOG_MCS, analog_snr_db  # noqa: E402
from testbed.link.framelink import ModelFrameLink, TxFrame  # noqa: E402
from testbed.link.medium import SimulatedMedium  # noqa: E402
from testbed.link.phylink import PhyFrameLink  # noqa: E402
from testbed.phy import OfdmModem, PhyConfig  # noqa: E402

PHY = PhyConfig()


def _run(link, rng: np.random.Generator, n: int, frames: int) -> dict[str, float]:
    errs, noise, cpu = [], [], 0.0
    for i in range(frames):
        x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
        c0 = time.process_time()
        heard = link.exchange([TxFrame(1, 100, x, ANALOG_MCS, 1, i)], [0], n // PHY.num_data * 80 + 2000).heard[0]
        cpu += time.process_time() - c0
        if heard:
            unit = x / np.sqrt(np.mean(np.abs(x) ** 2))
            errs.append(np.mean(np.abs(heard[0].symbols - unit) ** 2))
            noise.append(heard[0].noise_var)
    nmse, est = float(10 * np.log10(np.mean(errs))), float(10 * np.log10(np.mean(noise)))
    return {"nmse_db": nmse, "noise_estimate_db": est, "gap_db": nmse - est, "received": len(errs),
            "cpu_ms_per_frame": 1e3 * cpu / frames}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per point (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    modem = OfdmModem(PHY)
    rows = []
    taps = Multipath(2.0, np.random.default_rng(4), block_fading=False)
    gain = subcarrier_snr(PHY, taps.taps, 0.0)  # (n_data,) |H_k|^2 of the draw
    scale = np.float32(1.0 / np.sqrt(np.mean(gain)))  # mean gain 1, as the engine's phy medium scales it
    for channel in ("flat", "selective"):
        fading = [taps, lambda iq: iq * scale] if channel == "selective" else []
        shape = gain * scale**2 if channel == "selective" else np.ones(PHY.num_data)
        for snr_db in (5.0, 10.0, 20.0):
            for n in (96, 4800):
                rng = np.random.default_rng([int(snr_db), n])
                noise = Awgn(snr_db, rng, PHY.occupied_fraction)
                medium = SimulatedMedium(PHY.sample_rate_hz, {(1, 0): Chain([*fading, noise])}, rng)
                sub = 10 ** (snr_db / 10) * shape
                model = ModelFrameLink(PHY, rng, subcarrier_snr={(1, 0): sub})
                row = {"channel": channel, "snr_db": snr_db, "values": n, "analog_snr_db": analog_snr_db(sub)}
                row["phy"] = _run(PhyFrameLink(modem, medium), rng, n, args.frames)
                row["model"] = _run(model, rng, n, args.frames)
                rows.append(row)
                if not args.json:
                    p, m = row["phy"], row["model"]
                    print(f"{channel:9s} {snr_db:4.0f} dB {n:5d} values: analog SNR {row['analog_snr_db']:5.1f} dB | "
                          f"phy NMSE {p['nmse_db']:6.2f} est {p['noise_estimate_db']:6.2f} gap {p['gap_db']:+.2f} dB "
                          f"{p['cpu_ms_per_frame']:6.2f} ms | model NMSE {m['nmse_db']:6.2f} gap {m['gap_db']:+.2f} dB "
                          f"{m['cpu_ms_per_frame']:5.3f} ms", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps({"frames_per_point": args.frames, "rows": rows}))


if __name__ == "__main__":
    main()
