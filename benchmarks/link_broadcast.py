"""Broadcast of a large object to several UEs over the OFDM modem and simulated AWGN links, at given
injected frame-loss rates: bit-exactness (SHA-256 of what each UE got), goodput against the PHY bit rate,
airtime (and how much of it the NACK waits took) and resends, and the wall time the full DSP took. It runs
the link engine the daemons run (testbed/link/endpoints.py, driven by arq.run_transfer).

Usage: python benchmarks/link_broadcast.py [--megabytes 10] [--ues 3] [--loss 0.01 0.2] [--snr-db 25] [--json]
Target (issue 4): every UE bit-exact at each loss; goodput >= 70% of the PHY bit rate at 1% loss.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np

from testbed.cli._output import emit, format_table
from testbed.link.arq import LinkConfig, broadcast
from testbed.link.medium import SimulatedMedium, star_links
from testbed.link.phylink import PhyFrameLink
from testbed.phy import OfdmModem, PhyConfig
from testbed.phy.layout import phy_bit_rate_bps


def run(megabytes: float, ues: int, loss: float, snr_db: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    phy = PhyConfig()
    data = rng.bytes(int(megabytes * 1e6))
    links = star_links(phy.occupied_fraction, phy.sample_rate_hz, [snr_db] * ues, rng)
    link = PhyFrameLink(OfdmModem(phy), SimulatedMedium(phy.sample_rate_hz, links, rng, frame_loss=loss))
    t0 = time.perf_counter()
    rep = broadcast(link, data, src=0, receivers=list(range(1, ues + 1)), object_id=1, cfg=LinkConfig())
    wall_s = time.perf_counter() - t0
    digest = hashlib.sha256(data).hexdigest()
    exact = [d.data is not None and hashlib.sha256(d.data).hexdigest() == digest for d in rep.deliveries]
    mcs = max(rep.mcs_frames, key=rep.mcs_frames.get)
    return {
        "loss": loss,
        "object_bytes": len(data),
        "bit_exact_ues": sum(exact),
        "ues": ues,
        "main_mcs": mcs,
        "phy_bit_rate_bps": phy_bit_rate_bps(phy, mcs),
        "goodput_bps": rep.goodput_bps,
        "goodput_over_phy_rate": rep.goodput_bps / phy_bit_rate_bps(phy, mcs),
        "airtime_s": rep.airtime_s,
        "burst_airtime_s": rep.burst_samples / phy.sample_rate_hz,
        "window_samples": rep.window_samples,
        "frames": sum(rep.frame_count.values()),
        "frames_sent": rep.frames_sent,
        "frames_resent": rep.frames_resent,
        "frames_lost": rep.frames_lost,
        "repair_rounds": rep.repair_rounds,
        "nacks_sent": rep.nacks_sent,
        "snr_db": [c.snr_db for c in rep.channel],
        "wall_s": wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--ues", type=int, default=3)
    parser.add_argument("--loss", type=float, nargs="+", default=[0.01, 0.2])
    parser.add_argument("--snr-db", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args()
    runs = [run(args.megabytes, args.ues, loss, args.snr_db, args.seed) for loss in args.loss]
    emit({"runs": runs}, as_json=args.json, human=_human)


def _human(result: dict) -> str:
    head = ["loss", "bit-exact", "MCS", "goodput Mb/s", "of PHY rate", "airtime s", "in bursts s", "sent",
            "resent", "rounds", "NACKs", "wall s"]  # fmt: skip
    rows = [
        [r["loss"], f"{r['bit_exact_ues']}/{r['ues']}", r["main_mcs"], r["goodput_bps"] / 1e6,
         f"{r['goodput_over_phy_rate']:.1%}", r["airtime_s"], r["burst_airtime_s"], r["frames_sent"],
         r["frames_resent"], r["repair_rounds"], r["nacks_sent"], r["wall_s"]]
        for r in result["runs"]
    ]  # fmt: skip
    return format_table(head, rows)


if __name__ == "__main__":
    main()
