"""Run several schemes on the same scenario and seed, and summarise them against a target accuracy.

For each scheme: final accuracy (overall, per class, and on the weak UEs' own classes when the partition is
``weak_exclusive``), and the virtual time, UE energy and uplink bits spent until the test accuracy first reached
the target (None when it never did), and what it uploaded. A scheme the scenario's regime does not allow (raw
uploads from a UE that keeps its raw samples, testbed/experiment/schemes.py) is not run and is listed under
``not_allowed`` with the reason. ``regime`` says which UEs keep their raw data and how fast data arrive.
Plots: accuracy vs virtual time and vs energy.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

from testbed.errors import ConfigError
from testbed.experiment.engine import Engine
from testbed.experiment.executor import Executor
from testbed.experiment.report.runs import METHOD
from testbed.experiment.report.table import best_per_column, to_target
from testbed.experiment.scenario import Scenario
from testbed.experiment.schemes import not_allowed


def run_scheme(
    scenario: Scenario,
    name: str,
    out_dir: Path | None,
    wrap: Callable[[range, str], Iterable[int]] = lambda r, _desc: r,
    threads: int | None = None,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """One scheme for ``scenario.run.rounds`` rounds (in ``out_dir / name``); its per-round metrics.
    ``threads``: torch threads of this process (a worker of a parallel comparison sets its own); ``executor``:
    the engine's (default: embedded)."""
    if threads is not None:
        torch.set_num_threads(threads)
    engine = Engine(scenario, name, out_dir / name if out_dir is not None else None, executor=executor)
    history = engine.start()
    for _ in wrap(range(scenario.run.rounds), name):
        history.append(engine.step())
    return history


def run_comparison(
    scenario: Scenario,
    schemes: Sequence[str],
    out_dir: Path | None,
    wrap: Callable[[range, str], Iterable[int]] = lambda r, _desc: r,
    jobs: int = 1,
    threads: int = 1,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Run every scheme for ``scenario.run.rounds`` rounds; returns summaries and full histories.

    ``jobs`` > 1 runs that many schemes at once, each in its own process (the schemes share nothing, so the
    figures are the same as one after another); ``wrap(range, description)`` then decorates the count of
    finished schemes, else each scheme's round loop (a progress bar). ``executor`` (one scheme at a time only):
    the engines' (default: embedded).
    """
    if executor is not None and jobs > 1:
        raise ConfigError("an executor serves one scheme at a time: run the schemes with jobs=1")
    refused = {n: why for n in schemes if (why := not_allowed(n, scenario)) is not None}
    schemes = [n for n in schemes if n not in refused]
    if jobs <= 1:
        histories = {name: run_scheme(scenario, name, out_dir, wrap, executor=executor) for name in schemes}
    else:
        done: dict[str, list[dict[str, Any]]] = {}
        spawn = multiprocessing.get_context("spawn")  # no forked torch state in the workers
        with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            futures = {pool.submit(run_scheme, scenario, n, out_dir, threads=threads): n for n in schemes}
            finished = as_completed(futures)
            for _ in wrap(range(len(futures)), f"{len(futures)} schemes, {jobs} at a time"):
                fut = next(finished)
                done[futures[fut]] = fut.result()
        histories = {name: done[name] for name in schemes}
    target = scenario.run.target_accuracy
    t = scenario.training
    classes = t.exclusive_classes if t.partition == "weak_exclusive" else []
    return {
        "scenario": scenario.name,
        "partition": scenario.training.partition,
        **({"weak_classes": list(classes)} if classes else {}),
        "seed": scenario.seed,
        "medium": scenario.medium.kind,
        "target_accuracy": target,
        "regime": regime(scenario),
        "method": METHOD if METHOD in histories else None,
        "schemes": (rows := {name: to_target(h, target, classes) for name, h in histories.items()}),
        "best": best_per_column(rows),
        "not_allowed": refused,
        "histories": histories,
    }


def regime(scenario: Scenario) -> dict[str, Any]:
    """What the scenario's data allow: the UEs that keep their raw samples, each streaming UE's samples per
    round, and the BS's board (it trains for every centralized UE)."""
    return {
        "raw_kept_on": scenario.raw_forbidden(),
        "samples_per_round": {ue.name: ue.samples_per_round for ue in scenario.ues if ue.samples_per_round},
        "bs_board": scenario.clock.bs_board,
    }


def plot(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """Accuracy vs virtual time and vs energy, one PNG each, drawn as the report draws them; returns the paths."""
    from testbed.experiment.report.figures import accuracy_figure

    title = f"{result['scenario']} ({result['partition']}, seed {result['seed']})"
    paths = []
    for key, label, fname in (
        ("virtual_time_s", "virtual time [s]", "accuracy_vs_time.png"),
        ("energy_j", "UE energy [J]", "accuracy_vs_energy.png"),
    ):
        curves = {name: [(m[key], m["accuracy"]) for m in hist] for name, hist in result["histories"].items()}
        accuracy_figure(curves, label, result["target_accuracy"], title, out_dir / fname)
        paths.append(out_dir / fname)
    return paths
