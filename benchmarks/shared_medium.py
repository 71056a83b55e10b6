"""Virtual time per round on the shared medium for 10, 50 and 200 UEs, and each uplink's bits per second
against its MCS's rate (issue 11, "Shared medium"), measured on the node cores' own transfers.

One run, one scenario: the default one (seed 1) with its 10 UEs repeated to N (ue<k> takes the board, SNR
and power of default UE k mod 10) and one TDMA cycle long enough for the largest N, so only the number of
UEs changes. Each N runs two fedavg_all rounds through the engine on the model medium (round 0 at bpsk-1/2,
nothing measured yet; round 1 at the measured MCS), every UE training and uploading its update frame by frame.
An uplink's rate is its upload's bits over the span from its first to its last burst on the air log.

Usage: python benchmarks/shared_medium.py [--ues 10 50 200] [--seed 1] [--json]
Target: round time grows with N; no uplink above its MCS rate; the UEs together below the top MCS rate.
"""

from __future__ import annotations

import argparse
import time

import msgspec
import torch

from testbed.cli._output import emit, format_table
from testbed.experiment.engine import Engine
from testbed.experiment.scenario import Scenario, load_scenario
from testbed.phy.layout import burst_num_samples

TOP_MCS = "64qam-3/4"


def scenario_with(base: Scenario, num_ues: int, cycle_samples: int) -> Scenario:
    """``base`` with its UEs repeated to ``num_ues`` and the TDMA cycle set to ``cycle_samples``."""
    ues = [msgspec.structs.replace(base.ues[k % len(base.ues)], name=f"ue{k}") for k in range(num_ues)]
    link = msgspec.structs.replace(base.link, tdma_cycle_samples=cycle_samples)
    return msgspec.structs.replace(base, ues=ues, link=link)


def shortest_cycle_samples(base: Scenario, num_ues: int) -> int:
    """The shortest cycle whose num_ues + 1 slots each hold one full bpsk-1/2 frame (the link.airtime check)."""
    frame = burst_num_samples(base.phy_config(), base.link.frame_payload_bytes, "bpsk-1/2")
    return (num_ues + 1) * frame + (num_ues + 2) * base.link.guard_samples


def run(base: Scenario, num_ues: int, cycle_samples: int) -> dict:
    t0 = time.perf_counter()
    engine = Engine(scenario_with(base, num_ues, cycle_samples), "fedavg_all")
    air, rate_hz = engine.airtime, base.link.sample_rate_hz
    engine.start()
    rounds = []
    for _ in range(2):
        bursts_before = len(engine.network.link.air_log.bursts)
        metrics = engine.step()
        record = engine.records[-1]
        spans: dict[int, list[int]] = {}
        for src, start, n in engine.network.link.air_log.bursts[bursts_before:]:
            lo, hi = spans.setdefault(src, [start, start + n])
            spans[src] = [min(lo, start), max(hi, start + n)]
        uplinks = {}
        for node, p in enumerate(engine.profiles, start=1):
            mcs = record["uplink_mcs"][p.name]
            bits = 8.0 * record["uploads"][p.name]["bytes"]
            span_s = (spans[node][1] - spans[node][0]) / rate_hz
            uplinks[p.name] = {"snr_db": p.snr_db, "mcs": mcs, "uplink_bps": bits / span_s,
                               "mcs_rate_bps": air.rate_bps(mcs), "of_mcs_rate": bits / span_s / air.rate_bps(mcs),
                               "upload_span_s": span_s}  # fmt: skip
        rounds.append({
            "round": metrics["round"],
            "round_time_s": metrics["round_time_s"],
            "uplink_bits": metrics["round_uplink_bits"],
            "all_uplinks_bps": metrics["round_uplink_bits"] / metrics["round_time_s"],
            "max_of_mcs_rate": max(u["of_mcs_rate"] for u in uplinks.values()),
            "uplinks": uplinks,
        })  # fmt: skip
    return {"ues": num_ues, "slot_samples": air.slot_samples, "rounds": rounds, "wall_s": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ues", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_scenario(overrides={"training": {"seed": args.seed}})
    cycle = shortest_cycle_samples(base, max(args.ues))
    air = scenario_with(base, max(args.ues), cycle).airtime()
    runs = [run(base, n, cycle) for n in args.ues]
    emit({"scenario": base.name, "seed": args.seed, "tdma_cycle_samples": cycle, "cycle_s": air.cycle_s,
          "top_mcs_rate_bps": air.rate_bps(TOP_MCS), "runs": runs}, as_json=args.json, human=_human)  # fmt: skip


def _human(result: dict) -> str:
    head = ["UEs", "round", "round s", "slot samples", "all uplinks Mb/s", "top MCS Mb/s", "max uplink / its MCS",
            "wall s"]  # fmt: skip
    rows = [[r["ues"], q["round"], q["round_time_s"], r["slot_samples"], q["all_uplinks_bps"] / 1e6,
             result["top_mcs_rate_bps"] / 1e6, f"{q['max_of_mcs_rate']:.1%}", r["wall_s"]]
            for r in result["runs"] for q in r["rounds"]]  # fmt: skip
    return f"TDMA cycle {result['tdma_cycle_samples']} samples ({result['cycle_s']:.2f} s)\n" + format_table(head, rows)


if __name__ == "__main__":
    main()
