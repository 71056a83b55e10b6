"""``testbed sweep``: one axis at a time (weak fraction, SNR spread, number of UEs, privacy, data rate), seeds
repeated; each scheme's time and energy to target relative to FedAvg-all with the spread over the seeds.

Writes ``--out/sweep.json`` (the object ``--json`` prints) and ``--out/sweep.png``; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from testbed.cli import UsageError
from testbed.cli._output import add_json_flag, emit, format_table, progress, to_jsonable
from testbed.cli._scenario import add_scenario_args, scenario_from_args, scheme_names

AXIS_NAMES = ("weak_fraction", "snr_spread_db", "num_ues", "privacy", "samples_per_round")  # sweep.AXES, lightly


def register(subparsers: argparse._SubParsersAction) -> None:
    names = scheme_names()
    p = subparsers.add_parser(
        "sweep",
        help="one scenario axis at a time: time/energy to target relative to FedAvg-all, seeds repeated",
        description="Vary one axis of the scenario (the fraction of weak UEs, the SNR spread in dB, the number of "
        "UEs, the privacy setting, the samples each UE gathers per round) and run the schemes at each value for "
        "each seed; report each scheme's virtual time and UE energy to the target accuracy relative to "
        "fedavg_all's (always run), as the mean and spread (min..max) over the seeds; write sweep.json and "
        "sweep.png to --out.",
    )
    p.add_argument("--axis", choices=AXIS_NAMES, required=True, help="the one axis to vary")
    p.add_argument("--values", nargs="+", default=None, metavar="V",
                   help="the axis's values (default: weak_fraction 0.2 0.4 0.6 0.8; snr_spread_db 0 10 20; num_ues "
                   "10 50 200 1000; privacy none weak all; samples_per_round 0 5 20)")  # fmt: skip
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], metavar="SEED", help="seeds (default 1 2 3)")
    p.add_argument("--schemes", nargs="+", choices=names, default=["fedavg_deadline", "hfcl", "hybrid", "policy"],
                   metavar="SCHEME", help="schemes besides fedavg_all (the reference)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("runs/sweep"), help="directory for sweep.json and sweep.png")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figure")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="schemes run at once, one process each")
    add_scenario_args(p)
    add_json_flag(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from testbed.experiment.sweep import AXES, DEFAULT_VALUES, plot, run_sweep

    torch.set_num_threads(max(1, args.threads))
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give at least 1")
    parse = AXES[args.axis][0]
    try:
        values = [parse(v) for v in args.values] if args.values else list(DEFAULT_VALUES[args.axis])
    except ValueError as exc:
        raise UsageError(f"--values for --axis {args.axis}: {exc}") from exc
    scenario = scenario_from_args(args)
    result = run_sweep(
        scenario,
        args.axis,
        values,
        args.seeds,
        args.schemes,
        wrap=lambda items, what: progress(items, desc=what, unit="points"),
        jobs=args.jobs,
        threads=max(1, args.threads),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result["plot"] = None if args.no_plots else str(plot(result, args.out / "sweep.png"))
    (args.out / "sweep.json").write_text(json.dumps(to_jsonable(result), indent=2) + "\n")
    emit(result, as_json=args.json, human=_human)
    return 0


def _ratio(s: dict[str, Any]) -> str | None:
    if s["mean"] is None:
        return None
    return f"{s['mean']:.2f} ({s['min']:.2f}..{s['max']:.2f}, {s['n']} seeds)"


def _human(r: dict[str, Any]) -> str:
    header = [r["axis"], "scheme", "time / fedavg_all", "energy / fedavg_all", "final acc (mean)", "note"]
    rows: list[list[Any]] = []
    for p in r["points"]:
        for name, s in p["schemes"].items():
            rows.append([p["value"], name, _ratio(s["time_ratio"]), _ratio(s["energy_ratio"]),
                         s["final_accuracy"]["mean"], ""])  # fmt: skip
        for name, why in p["not_allowed"].items():
            rows.append([p["value"], name, None, None, None, f"not allowed: {why}"])
    title = (f"{r['scenario']}: sweep of {r['axis']}, seeds {r['seeds']}, {r['rounds']} rounds, target accuracy "
             f"{r['target_accuracy']:.2f} (ratios over the seeds where both reached it; '-': never)")  # fmt: skip
    return title + "\n" + format_table(header, rows) + (f"\nplot: {r['plot']}" if r.get("plot") else "")
