"""``testbed compare``: every scheme on the same scenario and seed; table to the target and plots.

Schemes: the fixed baselines (fedavg_all, fedavg_deadline, centralized, hfcl, hybrid) and the policy's
(``policy``, the full method, and its ablations), all built by testbed/experiment/schemes.py and run through
the same engine. Writes per-scheme metrics to ``--out/<scheme>/metrics.jsonl``, ``summary.json`` and two PNGs (accuracy
vs virtual time, vs energy). ``--json`` prints one object with the per-scheme summaries. With several
``--privacy`` settings (e.g. ``all none``: the privacy regime beside the permissive one) each regime runs into
``--out/<setting>/`` and the object holds ``regimes``: one summary each; the table stacks them.
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
from testbed.experiment.privacy import REGIME_NAMES


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
    add_scenario_args(p, regimes=True)
    add_executor_args(p)
    add_json_flag(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from testbed.experiment.compare import plot, run_comparison

    torch.set_num_threads(max(1, args.threads))
    ray = args.executor == "ray"
    jobs = args.jobs if args.jobs is not None else 1 if ray else min(os.cpu_count() or 1, len(args.schemes))
    if jobs < 1 or (ray and jobs > 1):
        raise UsageError(f"--jobs {jobs}: give at least 1" + (", and 1 with --executor ray" if ray else ""))
    settings = list(dict.fromkeys(args.privacy))
    regimes = {}
    with executor_from_args(args) as executor:
        for setting in settings:
            scenario = scenario_from_args(args, setting)
            out = args.out if len(settings) == 1 else args.out / setting
            result = run_comparison(
                scenario,
                args.schemes,
                out,
                wrap=lambda items, what: progress(items, desc=f"compare {what}",
                                                  unit="rounds" if jobs == 1 else "schemes"),
                jobs=jobs,
                threads=max(1, args.threads),
                executor=executor,
            )  # fmt: skip
            if not result["schemes"]:
                why = "; ".join(f"{n} {w}" for n, w in result["not_allowed"].items())
                raise UsageError(f"--privacy {setting}: none of the schemes may run ({why}); allow raw uploads or "
                                 "choose schemes that keep raw data on the UEs")  # fmt: skip
            out.mkdir(parents=True, exist_ok=True)
            summary = {k: v for k, v in result.items() if k != "histories"}
            (out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
            summary["plots"] = [] if args.no_plots else [str(p) for p in plot(result, out)]
            regimes[setting] = summary
    emit(regimes[settings[0]] if len(settings) == 1 else {"regimes": regimes}, as_json=args.json, human=_human)
    return 0


def _human(s: dict[str, Any]) -> str:
    from testbed.experiment.report.table import text_table

    regimes = s.get("regimes", {None: s})
    first = next(iter(regimes.values()))
    weak = first.get("weak_classes")
    header, rows = [], []
    for name, r in regimes.items():
        label = REGIME_NAMES[name] if name is not None else None
        header, more = text_table(r["schemes"], r["not_allowed"], weak_classes=bool(weak), regime=label)
        rows += more
    title = (
        f"{first['scenario']} / {first['partition']}, {first['medium']} medium, seed {first['seed']}, "
        f"target accuracy {first['target_accuracy']:.2f}" + (f", weak UEs' classes {weak}" if weak else "")
    )
    lines = [title, format_table(header, rows), "* best in its column" + (" within its regime" if len(regimes) > 1
             else "")]  # fmt: skip
    for name, r in regimes.items():
        kept, rates = r["regime"]["raw_kept_on"], r["regime"]["samples_per_round"]
        streaming = f"; new samples per round {rates}" if rates else ""
        lines.append(f"{REGIME_NAMES[name] if name else 'regime'}: raw data stay on {', '.join(kept) or 'no UE'}; "
                     f"BS board {r['regime']['bs_board']}{streaming}")  # fmt: skip
    plots = [p for r in regimes.values() for p in r["plots"]]
    return "\n".join(lines) + ("\nplots: " + ", ".join(plots) if plots else "")
