"""``testbed sim``: the scenario as the whole stack of processes (hub, BS daemon, one UE daemon per UE), every
frame over the real PHY and link layer through the virtual-RF hub, one run directory per scheme under --out
(testbed/experiment/launch.py), the schemes one after another. Live progress on stderr, one line per round;
at the end the time, energy and uplink bits to the target per scheme (testbed report's table, on the air's
clock); ``--json`` prints the summary."""

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
METHOD = "policy"
PLAN_FILE = "plan.json"  # the schemes of a run, in order: what --resume continues
# testbed compare's schemes the stack runs (testbed/experiment/stack.py scheme_assign; listed here to keep the
# CLI light)
SIM_SCHEMES = ("policy", "policy_by_capability", "policy_by_channel", "policy_snr_threshold", "fedavg_all",
               "centralized", "hfcl", "hybrid", "hybrid_split")  # fmt: skip
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
    p.add_argument("--out", type=Path, default=Path("runs/sim"),
                   help="run directory, one sub-directory per scheme (default: %(default)s)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out where it stopped (its scenario, rounds, seed and schemes): a "
                   "finished scheme is kept, the others start again, each BS from its checkpoint")  # fmt: skip
    p.add_argument("--rounds", type=int, default=None, help="rounds to run (default: the scenario's)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's [training] seed")
    p.add_argument("--capture", nargs="+", default=[], metavar="NODE",
                   help="record what these nodes (bs or a UE's name) receive as SigMF files in each scheme's "
                   "captures/ (8 bytes per sample of air time each; testbed radio replay decodes them)")  # fmt: skip
    p.add_argument("--kill", nargs="+", default=[], metavar="UE@ROUND",
                   help="faults: SIGKILL that UE's process once the BS has started that round; it is started again "
                   "when the round is recorded and rejoins")  # fmt: skip
    p.add_argument(
        "--drop",
        nargs="+",
        default=[],
        metavar="NODE=SHARE",
        help="faults: lose this share (0..1) of the radio bursts on every link of that node, e.g. ue1=0.2",
    )
    others = ", ".join(n for n in SIM_SCHEMES if n != METHOD)
    p.add_argument("--schemes", nargs="+", default=[METHOD], metavar="SCHEME",
                   help=f"schemes to run through the same stack, one after another (default: {METHOD}, the full "
                   f"method, its UEs choosing their modes; also {others})")  # fmt: skip
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
    from testbed.experiment.report.runs import read_run
    from testbed.experiment.report.table import target_table

    scenario, schemes = _resumed(args) if args.resume else _planned(args)
    rounds = scenario.run.rounds
    signal.signal(signal.SIGTERM, _interrupted)  # a SIGTERM (systemd, timeout) stops the stack as Ctrl-C does
    summary: dict[str, Any] = {"scenario": scenario.name, "target_accuracy": scenario.run.target_accuracy,
                               "run_dir": str(args.out), "schemes": {}}  # fmt: skip
    for scheme in schemes:
        out = args.out / scheme
        done = _finished(out, rounds)
        summary["schemes"][scheme] = done or _run_scheme(out, scenario, scheme, rounds, len(schemes) > 1,
                                                         tuple(args.capture), _faults(args, scenario))  # fmt: skip
    summary["wall_time_s"] = sum(s["wall_time_s"] for s in summary["schemes"].values())
    (args.out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
    summary["table"] = target_table(read_run(args.out))
    (args.out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
    emit(summary, as_json=args.json, human=_human)
    return 0


def _planned(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """A new run: the scenario with --rounds and --seed, the schemes checked, --out prepared (its plan and the
    resolved scenario written first, so that --resume finds them)."""
    from testbed.cli import UsageError
    from testbed.errors import ConfigError
    from testbed.experiment.launch import resolved_scenario
    from testbed.experiment.scenario import load_scenario
    from testbed.experiment.stack import scheme_assign

    scenario = load_scenario(args.scenario, {"run": {"rounds": args.rounds}, "training": {"seed": args.seed}})
    if scenario.run.rounds < 1:
        raise UsageError(f"--rounds {scenario.run.rounds}: give at least 1")
    schemes = list(dict.fromkeys(args.schemes))
    for scheme in schemes:  # a scheme the stack cannot run is refused before anything starts
        scheme_assign(scenario, scheme)
    nodes = {"bs", *(ue.name for ue in scenario.ues)}
    unknown = [n for n in args.capture if n not in nodes]
    if unknown:
        raise UsageError(f"--capture {' '.join(unknown)}: not a node of this scenario ({', '.join(sorted(nodes))})")
    _faults(args, scenario)  # refused before anything starts
    if args.overwrite and args.out.exists():
        shutil.rmtree(args.out)
    if (args.out / PLAN_FILE).exists() or any((args.out / s).exists() for s in schemes):
        raise ConfigError(f"{args.out} holds an earlier run; pass --resume to continue it, --overwrite to replace "
                          "it, or choose another --out")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scenario.toml").write_text(resolved_scenario(scenario, scenario.run.rounds, scenario.training.seed))
    (args.out / PLAN_FILE).write_text(json.dumps({"schemes": schemes}) + "\n")
    return scenario, schemes


def _resumed(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The run in --out as it was planned; options that would change it are refused."""
    from testbed.cli import UsageError
    from testbed.errors import ConfigError
    from testbed.experiment.scenario import load_scenario

    changed = [flag for flag, given in (("--rounds", args.rounds is not None), ("--seed", args.seed is not None),
               ("--schemes", args.schemes != [METHOD]), ("--overwrite", args.overwrite)) if given]  # fmt: skip
    if changed:
        raise UsageError(f"--resume continues the run in {args.out} as it was started; drop {', '.join(changed)}")
    try:
        plan = json.loads((args.out / PLAN_FILE).read_text())
        schemes = [str(s) for s in plan["schemes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{args.out} holds no testbed sim run to resume ({args.out / PLAN_FILE}: {exc}); start one "
                          "without --resume") from exc  # fmt: skip
    scenario = load_scenario(args.out / "scenario.toml")
    if args.scenario != SIM_SCENARIO and load_scenario(args.scenario).name != scenario.name:
        raise UsageError(f"the run in {args.out} is of scenario {scenario.name!r}, not {args.scenario}'s")
    return scenario, schemes


def _finished(out: Path, rounds: int) -> dict[str, Any] | None:
    """The summary of a scheme already run to its last round in ``out`` (None: run it, or resume it)."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("rounds") == rounds else None


def _faults(args: argparse.Namespace, scenario: Any) -> Any:
    """--kill UE@ROUND and --drop NODE=SHARE as the stack's Faults; a malformed one is a usage error."""
    from testbed.cli import UsageError
    from testbed.experiment.launch import Faults

    ues, nodes = {ue.name for ue in scenario.ues}, {"bs", *(ue.name for ue in scenario.ues)}
    kill: dict[str, int] = {}
    for item in args.kill:
        name, _, rnd = item.partition("@")
        if name not in ues or not rnd.isdigit() or not 1 <= int(rnd) <= scenario.run.rounds:
            raise UsageError(f"--kill {item}: give UE@ROUND, a UE of the scenario ({', '.join(sorted(ues))}) and a "
                             f"round in 1..{scenario.run.rounds}")  # fmt: skip
        kill[name] = int(rnd)
    drop: dict[str, float] = {}
    for item in args.drop:
        name, _, share = item.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if name not in nodes or not 0.0 <= value < 1.0:
            raise UsageError(f"--drop {item}: give NODE=SHARE, a node of the scenario ({', '.join(sorted(nodes))}) "
                             "and a share in [0, 1)")  # fmt: skip
        drop[name] = value
    return Faults(kill, drop)


def _run_scheme(
    out: Path,
    scenario: Any,
    scheme: str,
    rounds: int,
    prefix: bool,
    capture: tuple[str, ...] = (),
    faults: Any = None,
) -> dict[str, Any]:
    """One scheme's stack in ``out``: started, run to its last round (a line per round on stderr), stopped."""
    from testbed.experiment.launch import Stack, summarise

    resume = out.exists()  # a scheme the run had started: its BS continues from its checkpoint
    out.mkdir(parents=True, exist_ok=True)
    stack = Stack(out, scenario, rounds=rounds, seed=scenario.training.seed, scheme=scheme, resume=resume,
                  capture=capture, faults=faults)  # fmt: skip
    tag = f"{scheme}: " if prefix else ""
    start = time.monotonic()
    records: list[dict[str, Any]] = []
    statuses: dict[str, int | None] = {}
    try:
        stack.start()
        print(f"sim: {tag}hub, BS and {len(scenario.ues)} UEs started in {out} ({time.monotonic() - start:.0f} s)",
              file=sys.stderr, flush=True)  # fmt: skip
        records = stack.run(
            lambda r: print(tag + _line(r, rounds, time.monotonic() - start), file=sys.stderr, flush=True)
        )
    finally:
        statuses = stack.close()
    summary = summarise(stack, records, time.monotonic() - start, statuses)
    summary["run_dir"] = str(out)
    (out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
    return summary


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _human(s: dict[str, Any]) -> str:
    rows = s["table"]["schemes"]
    lines = [f"{s['scenario']}: {len(s['schemes'])} scheme(s), {s['wall_time_s']:.0f} s wall; to "
             f"{s['target_accuracy']:.0%} accuracy on the air's clock (run directory {s['run_dir']}):"]  # fmt: skip

    def fig(v: Any, unit: str) -> str:
        return "-" if v is None else f"{v:.1f} {unit}"

    for name, run in s["schemes"].items():
        acc = run["final_accuracy"]
        r = rows.get(name, {})
        lines.append(f"  {name}: final accuracy {'-' if acc is None else f'{acc:.3f}'}, time "
                     f"{fig(r.get('time_to_target_s'), 's')}, energy {fig(r.get('energy_to_target_j'), 'J')}, "
                     f"{run['rounds']} rounds, {run['wall_time_s']:.0f} s wall")  # fmt: skip
    return "\n".join(lines)
