"""Run several schemes on the same scenario and seed, and summarise them against a target accuracy.

For each scheme: final accuracy (overall, per class, and on the weak UEs' own classes when the partition is
``weak_exclusive``), and the virtual time, UE energy and uplink bits spent until the test accuracy first reached
the target (None when it never did). Plots: accuracy vs virtual time and vs energy.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

from testbed.experiment.engine import Engine
from testbed.experiment.plotstyle import TARGET_LINE, legend_label, merge_identical, style
from testbed.experiment.scenario import Scenario

METHOD = "policy"  # the full method: drawn on top of the baselines and ablations


def to_target(history: Sequence[dict[str, Any]], target: float, classes: Sequence[int] = ()) -> dict[str, Any]:
    """Summary of one run's per-round metrics (as written by the engine); with ``classes``, also the final mean
    accuracy over those classes (``final_accuracy_on_classes``)."""
    hit = next((m for m in history if m["accuracy"] >= target), None)
    last = history[-1]
    per_class = last.get("class_accuracy") or []
    on_classes = [per_class[c] for c in classes if c < len(per_class) and per_class[c] is not None]
    return {
        "final_accuracy": last["accuracy"],
        "final_class_accuracy": per_class,
        **({"final_accuracy_on_classes": sum(on_classes) / len(on_classes) if on_classes else None} if classes else {}),
        "time_to_target_s": hit["virtual_time_s"] if hit else None,
        "energy_to_target_j": hit["energy_j"] if hit else None,
        "uplink_bits_to_target": hit["uplink_bits"] if hit else None,
        "rounds_to_target": hit["round"] + 1 if hit else None,
        "rounds": len(history),
        "total_time_s": last["virtual_time_s"],
        "total_energy_j": last["energy_j"],
        "total_uplink_bits": last["uplink_bits"],
    }


def run_scheme(
    scenario: Scenario,
    name: str,
    out_dir: Path | None,
    wrap: Callable[[range, str], Iterable[int]] = lambda r, _desc: r,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """One scheme for ``scenario.run.rounds`` rounds (in ``out_dir / name``); its per-round metrics.
    ``threads``: torch threads of this process (a worker of a parallel comparison sets its own)."""
    if threads is not None:
        torch.set_num_threads(threads)
    engine = Engine(scenario, name, out_dir / name if out_dir is not None else None)
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
) -> dict[str, Any]:
    """Run every scheme for ``scenario.run.rounds`` rounds; returns summaries and full histories.

    ``jobs`` > 1 runs that many schemes at once, each in its own process (the schemes share nothing, so the
    figures are the same as one after another); ``wrap(range, description)`` then decorates the count of
    finished schemes, else each scheme's round loop (a progress bar).
    """
    if jobs <= 1:
        histories = {name: run_scheme(scenario, name, out_dir, wrap) for name in schemes}
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
        "schemes": {name: to_target(h, target, classes) for name, h in histories.items()},
        "histories": histories,
    }


def draw_order(histories: dict[str, list[dict[str, Any]]], key: str) -> list[tuple[list[str], tuple]]:
    """(scheme names, ((x, accuracy), ...)) per distinct curve of accuracy against ``key``; schemes with equal
    curves share one entry, and the entry holding the method comes last so it is drawn on top."""
    curves = {name: tuple((m[key], m["accuracy"]) for m in hist) for name, hist in histories.items()}
    groups = sorted(merge_identical(curves), key=lambda names: METHOD in names)
    return [(names, curves[names[0]]) for names in groups]


def plot(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """Accuracy vs virtual time and vs energy, one PNG each (matplotlib Agg); returns the paths.

    Every scheme has its own colour and marker; schemes whose curves coincide are drawn once and named together
    in the legend; the full method (``policy``) is drawn last, on top, with a heavier line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    histories = result["histories"]
    order = list(histories)
    paths = []
    for key, label, fname in (
        ("virtual_time_s", "virtual time [s]", "accuracy_vs_time.png"),
        ("energy_j", "UE energy [J]", "accuracy_vs_energy.png"),
    ):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for names, curve in draw_order(histories, key):
            x, y = zip(*curve, strict=True) if curve else ((), ())
            on_top = METHOD in names
            ax.plot(
                x,
                y,
                label=legend_label(names),
                markevery=max(1, len(x) // 12),
                markersize=7 if on_top else 5,
                linewidth=2.4 if on_top else 1.2,
                zorder=10 if on_top else 2,
                **style(order.index(names[0])),
            )
        target = result["target_accuracy"]
        ax.axhline(target, label=f"target accuracy {target:.2f}", **TARGET_LINE)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{result['scenario']} ({result['partition']}, seed {result['seed']})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=120)
        plt.close(fig)
        paths.append(out_dir / fname)
    return paths
