"""The energy budget where it binds: one scheme on the default scenario with every ASSIGN budget capped.

The shipped boards' budgets (20-80 J per round) never bind in the default scenario (its rounds cost at most
2.8 J, docs/results.md). This caps every UE's per-round budget at ``--budget-j`` (the engine's ASSIGN orders
with ``energy_budget_j = min(board's, cap)``) and runs ``--rounds`` rounds of ``--scheme`` through the node
cores, so the UEs' rule (testbed/policy/budget.py) has to reduce or decline. Prints the UE-rounds per kind of
work, the largest spent / budget, how many UE-rounds went over (the rule's promise: none), the final accuracy,
and the total UE energy; the same with the budgets as shipped for comparison.

    PYTHONPATH=. python3 benchmarks/tight_budget.py [--scheme policy] [--budget-j 1.0] [--rounds 20] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from typing import Any

import torch

from testbed.experiment import engine as engine_module
from testbed.experiment.engine import Engine
from testbed.experiment.scenario import load_scenario


def run(scheme: str, rounds: int, cap_j: float | None) -> dict[str, Any]:
    real = engine_module.assigner_for

    def capped(*args):  # noqa: ANN002, ANN202 - wraps assigner_for
        inner = real(*args)
        if cap_j is None:
            return inner
        return lambda views: {ue: dataclasses.replace(o, energy_budget_j=min(o.energy_budget_j, cap_j))
                              for ue, o in inner(views).items()}  # fmt: skip

    engine_module.assigner_for = capped
    try:
        eng = Engine(load_scenario(overrides={"run": {"rounds": rounds}}), scheme)
        history = eng.run(rounds)
    finally:
        engine_module.assigner_for = real
    spent = [(j, r["ue_energy_budget_j"][ue]) for r in eng.records for ue, j in r["ue_energy_j"].items()]
    work = Counter(w for r in eng.records for w in r["ue_work"].values())
    return {
        "budget_cap_j": cap_j,
        "work": dict(work),
        "max_spent_over_budget": max(j / b for j, b in spent if b > 0),
        "over_budget": sum(j > b for j, b in spent),
        "final_accuracy": history[-1]["accuracy"],
        "energy_j": history[-1]["energy_j"],
        "virtual_time_s": history[-1]["virtual_time_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", default="policy")
    parser.add_argument("--budget-j", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [run(args.scheme, args.rounds, None), run(args.scheme, args.rounds, args.budget_j)]
    if args.json:
        print(json.dumps({"scheme": args.scheme, "rounds": args.rounds, "rows": rows}))
        return
    print(f"{args.scheme}, default scenario, {args.rounds} rounds")
    for r in rows:
        cap = "as shipped" if r["budget_cap_j"] is None else f"<= {r['budget_cap_j']:g} J"
        print(f"budget {cap:>11}: work {r['work']}, max spent/budget {r['max_spent_over_budget']:.3f}, "
              f"over {r['over_budget']}, accuracy {r['final_accuracy']:.3f}, UE energy {r['energy_j']:.1f} J, "
              f"virtual time {r['virtual_time_s']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
