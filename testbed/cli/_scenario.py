"""What ``testbed train`` and ``testbed compare`` share: the scenario file with its overrides, and the scheme
names (listed without importing the numerics, so ``testbed --help`` stays fast)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testbed.experiment.executor import Executor
    from testbed.experiment.scenario import Scenario


def scheme_names() -> list[str]:
    """Every scheme name, without importing the numerics (fixed baselines, then the policy variants)."""
    from testbed.learning.schemes import SCHEME_NAMES
    from testbed.policy.variants import POLICY_VARIANTS

    return [*SCHEME_NAMES, *POLICY_VARIANTS]


def add_scenario_args(parser: argparse.ArgumentParser, *, regimes: bool = False) -> None:
    """Scenario file and the overrides ``train``, ``compare`` and ``sweep`` share; ``regimes``: --privacy takes
    several settings (one comparison each)."""
    from testbed.experiment.privacy import PRIVACY_SETTINGS  # a light module

    privacy_help = "which UEs keep their raw samples: " + "; ".join(f"{k}: {v}" for k, v in PRIVACY_SETTINGS.items())
    parser.add_argument("--scenario", type=Path, default=None, help="scenario TOML (default: the built-in one)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds to run (default: the scenario's)")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario seed")
    parser.add_argument("--target-accuracy", type=float, default=None, help="override [run] target_accuracy")
    parser.add_argument("--dataset", default=None, help="mnist | digits | folder:<path>")
    parser.add_argument("--partition", default=None, help="iid | dirichlet | weak_exclusive")
    parser.add_argument(
        "--medium",
        choices=("model", "phy"),
        default=None,
        help="model: the PER table measured by this receiver, exact burst lengths (fast); phy: every frame through "
        "the real modem, the channel models and the receiver (slow); default: the scenario's [medium] kind",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small models: 1 is fastest)")
    parser.add_argument(
        "--raw-upload-budget-s",
        type=float,
        default=None,
        help="policy schemes: airtime a weak UE may always spend once on its raw data (default: the scenario's)",
    )
    parser.add_argument(
        "--deadline-factor",
        type=float,
        default=None,
        help="policy schemes: the allocator's round deadline as a multiple of the shortest round (>= 1; 1 = "
        "fastest rounds, larger = less energy per round; default: the scenario's)",
    )
    parser.add_argument("--privacy", choices=list(PRIVACY_SETTINGS), nargs="+" if regimes else None,
                        default=["file"] if regimes else "file",
                        help=privacy_help + ("; several: one comparison each" if regimes else ""))  # fmt: skip
    parser.add_argument("--samples-per-round", type=int, default=None, metavar="N",
                        help="every UE gathers N new samples of its share per round (streaming; 0: all from round "
                        "0; default: each [[ues]] samples_per_round)")  # fmt: skip
    parser.add_argument("--bs-board", default=None, help="the BS's board in profiles.toml (default: [clock] bs_board)")


def scenario_from_args(args: argparse.Namespace, privacy: str | None = None) -> Scenario:
    """Load the scenario named by ``args`` with its overrides applied; ``privacy`` (default: ``args.privacy``)
    and ``--samples-per-round`` rewrite every UE (scenario.with_regime)."""
    from testbed.experiment.scenario import DEFAULT_SCENARIO, load_scenario, with_regime

    overrides = {
        "run": {"rounds": args.rounds, "target_accuracy": args.target_accuracy},
        "training": {"dataset": args.dataset, "partition": args.partition, "seed": args.seed},
        "policy": {"raw_upload_budget_s": args.raw_upload_budget_s, "deadline_factor": args.deadline_factor},
        "medium": {"kind": args.medium},
        "clock": {"bs_board": args.bs_board},
    }
    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO, overrides)
    return with_regime(scenario, privacy or args.privacy, args.samples_per_round)


def add_executor_args(parser: argparse.ArgumentParser) -> None:
    """Who computes the UE work of a round (testbed/experiment/executor.py)."""
    parser.add_argument(
        "--executor",
        choices=("embedded", "ray"),
        default="embedded",
        help="embedded: in this process, local training batched across UEs (default); ray: the batches as Ray "
        "tasks (the ray extra), on --ray-address or a local Ray; the figures are the same",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="an existing Ray cluster for --executor ray (default: start a local Ray on this machine's CPUs)",
    )


@contextlib.contextmanager
def executor_from_args(args: argparse.Namespace) -> Iterator[Executor | None]:
    """The executor ``args`` name, closed (a local Ray stopped) when the block ends; None for embedded (each
    engine builds its own, also in the worker processes of ``compare --jobs``)."""
    from testbed.experiment.executor import build_executor

    if args.executor == "embedded":
        build_executor(args.executor, args.ray_address)  # refuses --ray-address without --executor ray
        yield None
        return
    executor = build_executor(args.executor, args.ray_address)
    try:
        yield executor
    finally:
        executor.close()
