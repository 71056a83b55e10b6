"""``testbed train``: run one scheme for N rounds in process (simulated channel, PHY-exact airtime).

Writes metrics.jsonl (one line per round) and checkpoint.pt (verified, atomic, every round) to ``--out``;
``--resume`` continues a checkpoint exactly; an earlier run in ``--out`` is kept unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.cli._output import add_json_flag, emit, format_table, progress
from testbed.cli._scenario import (
    add_executor_args,
    add_scenario_args,
    executor_from_args,
    scenario_from_args,
    scheme_names,
)

if TYPE_CHECKING:
    from testbed.experiment.scenario import Scenario


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one scheme in process with the virtual clock",
        description="Train one scheme for N rounds, all UEs in this process (simulated channel, airtime from the "
        "PHY's exact frame sizes). Writes metrics.jsonl (one line per round) and a verified checkpoint.pt to --out "
        "every round; --resume continues exactly where a stopped or killed run left off.",
    )
    p.add_argument("--scheme", choices=scheme_names(), default="hybrid", help="a baseline or a policy variant")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="directory for metrics and checkpoint")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out (same scheme, "
                      "seed and scenario; --rounds may grow)")  # fmt: skip
    mode.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    p.add_argument(
        "--codec-only",
        type=float,
        nargs="+",
        metavar="SNR_DB",
        help="instead: train the codec alone, centrally, at each SNR and report its test accuracy",
    )
    p.add_argument("--codec-steps", type=int, default=2000, help="minibatches for --codec-only")
    add_scenario_args(p)
    add_executor_args(p)
    add_json_flag(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from testbed.experiment.engine import Engine

    torch.set_num_threads(max(1, args.threads))
    scenario = scenario_from_args(args)
    if args.codec_only:
        return _codec_only(args, scenario)
    with executor_from_args(args) as executor:
        engine = Engine(scenario, args.scheme, args.out, executor=executor)
        rounds = scenario.run.rounds
        history = engine.resume() if args.resume else engine.start(overwrite=args.overwrite)
        for _ in progress(range(engine.rounds_done, rounds), desc=f"train {args.scheme}", unit="rounds"):
            history.append(engine.step())
    last = history[-1] if history else {}
    result: dict[str, Any] = {
        "scheme": args.scheme,
        "rounds": len(history),
        "final_accuracy": last.get("accuracy"),
        "virtual_time_s": last.get("virtual_time_s"),
        "energy_j": last.get("energy_j"),
        "uplink_bits": last.get("uplink_bits"),
        "metrics": str(args.out / "metrics.jsonl"),
        "ue_links": {p.name: engine.airtime.describe(p.snr_db, p.channel_gain) for p in engine.profiles},
    }
    emit(result, as_json=args.json, human=_human)
    return 0


def _codec_only(args: argparse.Namespace, scenario: Scenario) -> int:
    from testbed.experiment.codec_bench import train_codec
    from testbed.experiment.engine import split_for

    train, test = split_for(scenario)
    cfg = scenario.codec_config(train.image_size_px, train.num_classes)
    results = [
        train_codec(cfg, train, test, snr, steps=args.codec_steps, seed=scenario.seed)
        for snr in progress(args.codec_only, desc="codec")
    ]
    out = {
        "dataset": scenario.training.dataset,
        "num_symbols": cfg.num_symbols,
        "steps": args.codec_steps,
        "test_accuracy_by_snr_db": {f"{r.snr_db:g}": r.test_accuracy for r in results},
    }
    rows = [[k, v] for k, v in out["test_accuracy_by_snr_db"].items()]
    emit(out, as_json=args.json, human=lambda _o: format_table(["snr_db", "test accuracy"], rows))
    return 0


def _human(r: dict[str, Any]) -> str:
    rows = [[k, r[k]] for k in ("scheme", "rounds", "final_accuracy", "virtual_time_s", "energy_j", "uplink_bits")]
    return format_table(["", "value"], rows) + f"\nmetrics: {r['metrics']}"
