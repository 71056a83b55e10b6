"""Energy per round against the budget, for every UE in every round of a ``testbed compare --out DIR`` run.

Reads each scheme's ``DIR/<scheme>/metrics.jsonl`` (the engine writes each UE's round energy, ASSIGN's
per-round budget and what the budget left of its work) and prints, per scheme: UE-rounds, the largest
round energy, the largest spent / budget ratio, how many UE-rounds went over, and the work kinds seen.
Exit status 1 if any UE spent more than its budget in any round.

    testbed compare --json --no-plots --out runs/compare
    python benchmarks/energy_budget.py runs/compare [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def summarise(run_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for metrics in sorted(run_dir.glob("*/metrics.jsonl")):
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        spent = [(r["round"], ue, j, r["ue_energy_budget_j"][ue]) for r in rows for ue, j in r["ue_energy_j"].items()]
        out[metrics.parent.name] = {
            "rounds": len(rows),
            "ue_rounds": len(spent),
            "max_round_energy_j": max((j for *_, j, _ in spent), default=0.0),
            "max_spent_over_budget": max((j / b for *_, j, b in spent if b > 0), default=0.0),
            "over_budget": [[rnd, ue] for rnd, ue, j, b in spent if j > b],
            "work": sorted({w for r in rows for w in r["ue_work"].values()}),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="the --out directory of testbed compare")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    table = summarise(args.run_dir)
    if not table:
        print(f"{args.run_dir}: no */metrics.jsonl; run testbed compare --out {args.run_dir} first", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(table))
    else:
        print(f"{'scheme':22} {'UE-rounds':>9} {'max J':>7} {'max spent/budget':>17} {'over':>5}  work")
        for name, s in table.items():
            print(f"{name:22} {s['ue_rounds']:9d} {s['max_round_energy_j']:7.3f} {s['max_spent_over_budget']:17.4f} "
                  f"{len(s['over_budget']):5d}  {', '.join(s['work'])}")  # fmt: skip
    return 1 if any(s["over_budget"] for s in table.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
