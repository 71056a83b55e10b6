"""Virtual time per round on the shared medium for 10, 50 and 200 UEs, and each uplink's bits per second
against its MCS's rate (testbed/link/airtime.py; issue 11, "Shared medium").

One run, one scenario: the default one (seed 1) with its 10 UEs repeated to N (ue<k> takes the board, SNR
and power of default UE k mod 10) and one TDMA cycle long enough for the largest N, so only the number of
UEs changes. Each N runs one fedavg_all round through the engine (every UE trains and uploads its update).

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
    air = engine.airtime
    report = engine.runner.run_round(engine.scheme.policy.assign(0, engine.profiles), engine.scheme.deadline_s)
    uplinks = {}
    for p in engine.profiles:
        cost = report.costs[p.name]
        mcs = air.mcs.choose(p.snr_db)
        bps = cost.uplink_bits / cost.upload_s
        uplinks[p.name] = {"snr_db": p.snr_db, "mcs": mcs, "uplink_bps": bps, "mcs_rate_bps": air.rate_bps(mcs),
                           "of_mcs_rate": bps / air.rate_bps(mcs), "upload_s": cost.upload_s,
                           "on_air_s": cost.on_air_s}  # fmt: skip
    return {
        "ues": num_ues,
        "round_time_s": report.time_s,
        "slot_samples": air.slot_samples,
        "uplink_bits": report.uplink_bits,
        "all_uplinks_bps": report.uplink_bits / report.time_s,
        "max_of_mcs_rate": max(u["of_mcs_rate"] for u in uplinks.values()),
        "uplinks": uplinks,
        "wall_s": time.perf_counter() - t0,
    }


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
    head = ["UEs", "round s", "slot samples", "all uplinks Mb/s", "top MCS Mb/s", "max uplink / its MCS", "wall s"]
    rows = [[r["ues"], r["round_time_s"], r["slot_samples"], r["all_uplinks_bps"] / 1e6,
             result["top_mcs_rate_bps"] / 1e6, f"{r['max_of_mcs_rate']:.1%}", r["wall_s"]]
            for r in result["runs"]]  # fmt: skip
    return f"TDMA cycle {result['tdma_cycle_samples']} samples ({result['cycle_s']:.2f} s)\n" + format_table(head, rows)


if __name__ == "__main__":
    main()
