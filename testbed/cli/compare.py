"""``testbed compare``: every scheme on the same scenario and seed; table to the target and plots.

Schemes: the fixed baselines (fedavg_all, fedavg_deadline, centralized, hfcl, hybrid) and the policy's
(``policy``, the full method, and its ablations), all built by testbed/experiment/schemes.py and run through
the same engine. Writes per-scheme metrics to ``--out/<scheme>/metrics.jsonl``, ``summary.json`` and two PNGs (accuracy
vs virtual time, vs energy). ``--json`` prints one object with the per-scheme summaries.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from testbed.cli import UsageError
from testbed.cli._output import add_json_flag, emit, format_table, progress, to_jsonable
from testbed.cli._scenario import (
    add_executor_args,
    add_scenario_args,
    executor_from_args,
    scenario_from_args,
    scheme_names,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    names = scheme_names()
    p = subparsers.add_parser(
        "compare",
        help="run every scheme on one scenario; time/energy/bits to target",
        description="Run every scheme (the fixed baselines and the policy with its ablations) on the same scenario "
        "and seed in process; print final accuracy and the virtual time, UE energy and uplink bits each needed to "
        "reach the scenario's target accuracy; write per-scheme metrics, summary.json and two plots to --out "
        "(replacing an earlier comparison there).",
    )
    p.add_argument("--schemes", nargs="+", choices=names, default=names, metavar="SCHEME",
                   help=f"schemes to run (default: all of {', '.join(names)})")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="directory for metrics and plots")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="schemes run at once, one process each (default: the CPU count; 1: one after another; "
                   "the figures are the same; --executor ray: 1, the UE work of each round is what runs in "
                   "parallel)")  # fmt: skip
    add_scenario_args(p)
    add_executor_args(p)
    add_json_flag(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from testbed.experiment.compare import plot, run_comparison

    torch.set_num_threads(max(1, args.threads))
    scenario = scenario_from_args(args)
    ray = args.executor == "ray"
    jobs = args.jobs if args.jobs is not None else 1 if ray else min(os.cpu_count() or 1, len(args.schemes))
    if jobs < 1 or (ray and jobs > 1):
        raise UsageError(f"--jobs {jobs}: give at least 1" + (", and 1 with --executor ray" if ray else ""))
    with executor_from_args(args) as executor:
        result = run_comparison(
            scenario,
            args.schemes,
            args.out,
            wrap=lambda items, what: progress(items, desc=f"compare {what}", unit="rounds" if jobs == 1 else "schemes"),
            jobs=jobs,
            threads=max(1, args.threads),
            executor=executor,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k != "histories"}
    (args.out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
    summary["plots"] = [] if args.no_plots else [str(p) for p in plot(result, args.out)]
    emit(summary, as_json=args.json, human=_human)
    return 0


def _human(s: dict[str, Any]) -> str:
    weak = s.get("weak_classes")
    header = ["scheme", "final acc", *(["acc on weak classes"] if weak else []), "time to target s",
              "energy to target J", "uplink Mbit to target", "rounds"]  # fmt: skip
    rows = []
    for name, r in s["schemes"].items():
        bits = r["uplink_bits_to_target"]
        rows.append(
            [
                name,
                r["final_accuracy"],
                *([r["final_accuracy_on_classes"]] if weak else []),
                r["time_to_target_s"],
                r["energy_to_target_j"],
                bits / 1e6 if bits is not None else None,
                r["rounds_to_target"],
            ]
        )
    title = (
        f"{s['scenario']} / {s['partition']}, {s['medium']} medium, seed {s['seed']}, "
        f"target accuracy {s['target_accuracy']:.2f}" + (f", weak UEs' classes {weak}" if weak else "")
    )
    return title + "\n" + format_table(header, rows) + ("\nplots: " + ", ".join(s["plots"]) if s["plots"] else "")
