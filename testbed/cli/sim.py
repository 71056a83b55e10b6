"""``testbed sim``: the scenario as the whole stack of processes (hub, BS daemon, one UE daemon per UE), every
frame over the real PHY and link layer through the virtual-RF hub, in one run directory
(testbed/experiment/launch.py). Live progress on stderr, one line per round; ``--json`` prints the summary."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from testbed.cli._output import add_json_flag, emit, to_jsonable

SIM_SCENARIO = Path(__file__).resolve().parents[1] / "experiment" / "scenarios" / "sim.toml"
SHORT_MODE = {"distributed": "dist", "centralized_decoder": "symb", "centralized_full": "raw", "idle": "idle"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sim",
        help="run a scenario as processes: hub, BS daemon, UE daemons (real PHY)",
        description="Run a scenario (default: the built-in 8-UE one) as the multi-process stack: it makes the CURVE "
        "keys, each process's config and the run directory, starts the virtual-RF hub, the BS daemon and one UE "
        "daemon per UE, runs the rounds with every frame through the real PHY and link layer, and stops everything "
        "at the end, on Ctrl-C or when a process dies. The UEs choose their modes by the full method's policy.",
    )
    p.add_argument("scenario", nargs="?", type=Path, default=SIM_SCENARIO,
                   help="scenario TOML, the format testbed compare reads (default: %(default)s)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("runs/sim"), help="run directory (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    p.add_argument("--rounds", type=int, default=None, help="rounds to run (default: the scenario's)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's [training] seed")
    p.add_argument("--rule", choices=("joint", "joint_snr", "capability", "channel"), default="joint",
                   help="the grouping rule the BS sends in its first information (default: %(default)s, the full "
                   "method; docs/policy.md)")  # fmt: skip
    add_json_flag(p)
    p.set_defaults(func=_run)


def _line(record: dict[str, Any], rounds: int, wall_s: float) -> str:
    t = record.get("training", {})
    acc = t.get("accuracy")
    air_s = record.get("air_clock_s", 0.0) - record.get("air_started_s", 0.0)
    accuracy = "-" if acc is None else f"{acc:.3f}"
    head = f"round {record['round']}/{rounds} {record['outcome']}: accuracy {accuracy}, wall {wall_s:.0f} s, "
    head += f"air {air_s:.1f} s"
    snr, mcs = record.get("uplink_effective_snr_db", {}), record.get("uplink_mcs", {})
    ues = []
    for ue, mode in sorted(record.get("modes", {}).items()):
        s = snr.get(ue)
        ues.append(f"{ue} {SHORT_MODE.get(mode, mode)} {'-' if s is None else f'{s:.0f}'} dB {mcs.get(ue, '-')}")
    return f"{head} | " + ", ".join(ues)


def _run(args: argparse.Namespace) -> int:
    from testbed.cli import UsageError
    from testbed.experiment.launch import Stack, summarise
    from testbed.experiment.scenario import load_scenario

    scenario = load_scenario(args.scenario, {"run": {"rounds": args.rounds}, "training": {"seed": args.seed}})
    rounds = scenario.run.rounds
    if rounds < 1:
        raise UsageError(f"--rounds {rounds}: give at least 1")
    if args.overwrite and args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    stack = Stack(args.out, scenario, rounds=rounds, seed=scenario.training.seed, rule=args.rule)
    signal.signal(signal.SIGTERM, _interrupted)  # a SIGTERM (systemd, timeout) stops the stack as Ctrl-C does
    start = time.monotonic()
    records: list[dict[str, Any]] = []
    statuses: dict[str, int | None] = {}
    try:
        stack.start()
        print(f"sim: hub, BS and {len(scenario.ues)} UEs started in {args.out} ({time.monotonic() - start:.0f} s)",
              file=sys.stderr, flush=True)  # fmt: skip
        records = stack.run(lambda r: print(_line(r, rounds, time.monotonic() - start), file=sys.stderr, flush=True))
    finally:
        statuses = stack.close()
    summary = summarise(stack, records, time.monotonic() - start, statuses)
    summary["run_dir"] = str(args.out)
    (args.out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
    emit(summary, as_json=args.json, human=_human)
    return 0


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _human(s: dict[str, Any]) -> str:
    acc = s["final_accuracy"]
    accuracy = "-" if acc is None else f"{acc:.3f}"
    return (f"{s['rounds']} rounds, final accuracy {accuracy}, {s['wall_time_s']:.0f} s wall, "
            f"{s['air_time_s']:.1f} s on the air (rounds); run directory {s['run_dir']}")
