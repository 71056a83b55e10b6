"""Undetected errors: send many short frames through the OFDM modem over AWGN at SNRs where many frames
fail, and count every corrupted payload that got past each check (PHY CRC-32, then the segment-header
checks, then the per-object SHA-256). The target is zero corrupted payloads delivered.

Usage: python benchmarks/link_undetected.py [--frames 100000] [--snr-db 1 2 3 4] [--mcs qpsk-1/2] [--json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from testbed.channel import Awgn
from testbed.cli._output import emit, format_table
from testbed.errors import LinkError
from testbed.link.endpoints import Inbound, RepairTiming, Verdict
from testbed.link.framelink import TxFrame
from testbed.link.medium import SimulatedMedium
from testbed.link.phylink import PhyFrameLink
from testbed.link.segment import HEADER_BYTES, parse, segment
from testbed.phy import OfdmModem, PhyConfig

GUARD_SAMPLES = 80


def run_point(snr_db: float, n_frames: int, mcs: str, frame_bytes: int, per_object: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    phy = PhyConfig()
    link = PhyFrameLink(OfdmModem(phy), SimulatedMedium(
        phy.sample_rate_hz, {(0, 1): Awgn(snr_db, rng, occupied_fraction=phy.occupied_fraction)}, rng))  # fmt: skip
    chunk = frame_bytes - HEADER_BYTES
    n_objects = -(-n_frames // per_object)
    objects = {oid: rng.bytes(per_object * chunk - 32) for oid in range(n_objects)}
    frames = [f for oid, d in objects.items()
              for f in segment(d, object_id=oid, src=0, dst=1, frame_payload_bytes=frame_bytes)]  # fmt: skip
    timing = RepairTiming(quiet_samples=1, sample_rate_hz=phy.sample_rate_hz, max_passes=1)  # no NACKs here
    reasm = {oid: Inbound(1, src=0, object_id=oid, timing=timing) for oid in objects}
    c = dict.fromkeys(["sent", "detected", "crc_ok", "crc_ok_corrupt", "header_refused", "accepted",
                       "accepted_corrupt"], 0)  # fmt: skip
    burst = link.burst_num_samples(frame_bytes, mcs)
    per_window = 256
    for w in range(0, len(frames), per_window):
        batch = frames[w : w + per_window]
        sent = set(batch)
        tx = [TxFrame(0, GUARD_SAMPLES + i * (burst + GUARD_SAMPLES), f, mcs, seq=(w + i) & 0xFFFF)
              for i, f in enumerate(batch)]  # fmt: skip
        heard = link.exchange(tx, [1], GUARD_SAMPLES + len(batch) * (burst + GUARD_SAMPLES)).heard[1]
        c["sent"] += len(batch)
        c["detected"] += len(heard)
        for h in heard:
            if h.payload is None:
                continue
            c["crc_ok"] += 1
            corrupt = h.payload not in sent
            c["crc_ok_corrupt"] += corrupt
            try:
                head, body = parse(h.payload)
            except LinkError:
                c["header_refused"] += 1
                continue
            r = reasm.get(head.object_id)
            if r is not None and r.offer(head, body, 0) is Verdict.NEW:
                c["accepted"] += 1
                c["accepted_corrupt"] += corrupt
    delivered = delivered_wrong = refused = 0
    for oid, r in reasm.items():
        try:
            data = r.deliver()
        except LinkError:
            refused += 1
            continue
        delivered += 1
        delivered_wrong += data != objects[oid]
    return {"snr_db": snr_db, "mcs": mcs, **c, "frame_error_rate": 1 - c["crc_ok"] / c["sent"],
            "objects": n_objects, "objects_delivered": delivered, "objects_refused": refused,
            "objects_delivered_corrupt": delivered_wrong}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames in total, split over the SNR points")
    parser.add_argument("--snr-db", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0])
    parser.add_argument("--mcs", default="qpsk-1/2")
    parser.add_argument("--frame-bytes", type=int, default=100, help="PHY payload per frame (header included)")
    parser.add_argument("--frames-per-object", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args()
    t0 = time.perf_counter()
    per_point = -(-args.frames // len(args.snr_db))
    points = [run_point(s, per_point, args.mcs, args.frame_bytes, args.frames_per_object, args.seed + i)
              for i, s in enumerate(args.snr_db)]  # fmt: skip
    totals = {k: sum(p[k] for p in points) for k in ("sent", "crc_ok_corrupt", "accepted_corrupt",
                                                     "objects_delivered_corrupt", "objects_delivered")}  # fmt: skip
    emit({"points": points, "totals": totals, "wall_s": time.perf_counter() - t0}, as_json=args.json, human=_human)


def _human(result: dict) -> str:
    head = ["SNR dB", "sent", "detected", "FER", "CRC ok", "CRC ok but corrupt", "header refused",
            "accepted corrupt", "objects ok", "objects refused", "delivered corrupt"]  # fmt: skip
    rows = [[p["snr_db"], p["sent"], p["detected"], p["frame_error_rate"], p["crc_ok"], p["crc_ok_corrupt"],
             p["header_refused"], p["accepted_corrupt"], p["objects_delivered"], p["objects_refused"],
             p["objects_delivered_corrupt"]] for p in result["points"]]  # fmt: skip
    t = result["totals"]
    return (format_table(head, rows) + f"\ntotal: {t['sent']} frames, {t['crc_ok_corrupt']} corrupted past the "
            f"CRC, {t['accepted_corrupt']} merged, {t['objects_delivered_corrupt']} corrupted objects delivered "
            f"({t['objects_delivered']} objects delivered); {result['wall_s']:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
