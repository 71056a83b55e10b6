"""``testbed report RUN_DIR``: an offline HTML page of a run (``RUN_DIR/report.html``) and its PNGs.

Reads what ``testbed compare --out``, ``testbed train --out`` and the BS daemon (``rounds.jsonl`` in its state dir,
also inside a ``testbed sim`` run directory) write; docs/report.md lists the figures and the schemas read.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from testbed.cli._output import add_json_flag, emit, format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="an offline HTML report (and PNGs) of a compare, train or daemon run directory",
        description="Read a run directory (testbed compare --out, testbed train --out, a BS state_dir or a testbed "
        "sim run) and write a self-contained HTML page: accuracy against virtual time, wall time and energy, the "
        "per-UE timeline of modes and airtime, the channel map, the constellation of received symbols, the table "
        "to the target accuracy and the events. The PNGs are written beside the page.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run directory to report on")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="where to write the page (default: RUN_DIR/report.html); the PNGs go to FILE's "
                   "directory, in <stem>-figures/")  # fmt: skip
    add_json_flag(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from testbed.experiment.report.page import write_report

    emit(write_report(args.run_dir, args.out), as_json=args.json, human=_human)
    return 0


def _human(r: dict[str, Any]) -> str:
    t = r["table"]
    header = ["scheme", "clock", "final acc", "time to target s", "energy to target J", "uplink Mbit to target"]
    rows = []
    for name, s in t["schemes"].items():
        bits = s["uplink_bits_to_target"]
        label = name + (" (method)" if name == t["method"] else "")
        rows.append([label, s["clock"], s["final_accuracy"], s["time_to_target_s"], s["energy_to_target_j"],
                     bits / 1e6 if bits is not None else None])  # fmt: skip
    best = ", ".join(f"{k}: {'/'.join(v)}" for k, v in t["best"].items())
    return (f"report: {r['report']} ({len(r['figures'])} figures, {r['events']['total']} events)\n"
            f"target accuracy {t['target_accuracy']:.2f}\n{format_table(header, rows)}\nbest: {best}")  # fmt: skip
