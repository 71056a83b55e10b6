"""Run several schemes on the same scenario and seed, and summarise them against a target accuracy.

For each scheme: final accuracy, and the virtual time, UE energy and uplink bits spent until the test
accuracy first reached the target (None when it never did). Plots: accuracy vs virtual time and vs energy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from testbed.experiment.engine import Engine
from testbed.experiment.scenario import Scenario


def to_target(history: Sequence[dict[str, Any]], target: float) -> dict[str, Any]:
    """Summary of one run's per-round metrics (as written by the engine)."""
    hit = next((m for m in history if m["accuracy"] >= target), None)
    last = history[-1]
    return {
        "final_accuracy": last["accuracy"],
        "time_to_target_s": hit["virtual_time_s"] if hit else None,
        "energy_to_target_j": hit["energy_j"] if hit else None,
        "uplink_bits_to_target": hit["uplink_bits"] if hit else None,
        "rounds_to_target": hit["round"] + 1 if hit else None,
        "rounds": len(history),
        "total_time_s": last["virtual_time_s"],
        "total_energy_j": last["energy_j"],
        "total_uplink_bits": last["uplink_bits"],
    }


def run_comparison(
    scenario: Scenario,
    schemes: Sequence[str],
    out_dir: Path | None,
    wrap: Callable[[range, str], Iterable[int]] = lambda r, _desc: r,
) -> dict[str, Any]:
    """Run every scheme for ``scenario.run.rounds`` rounds; returns summaries and full histories.

    ``wrap(range, description)`` may decorate each scheme's round loop (a progress bar).
    """
    histories = {}
    for name in schemes:
        engine = Engine(scenario, name, out_dir / name if out_dir is not None else None)
        histories[name] = engine.start()
        for _ in wrap(range(scenario.run.rounds), name):
            histories[name].append(engine.step())
    target = scenario.run.target_accuracy
    return {
        "scenario": scenario.name,
        "partition": scenario.training.partition,
        "seed": scenario.seed,
        "target_accuracy": target,
        "schemes": {name: to_target(h, target) for name, h in histories.items()},
        "histories": histories,
    }


def plot(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """Accuracy vs virtual time and vs energy, one PNG each (matplotlib Agg); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, label, fname in (
        ("virtual_time_s", "virtual time [s]", "accuracy_vs_time.png"),
        ("energy_j", "UE energy [J]", "accuracy_vs_energy.png"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, hist in result["histories"].items():
            ax.plot([m[key] for m in hist], [m["accuracy"] for m in hist], label=name)
        ax.axhline(result["target_accuracy"], color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{result['scenario']} ({result['partition']}, seed {result['seed']})")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=120)
        plt.close(fig)
        paths.append(out_dir / fname)
    return paths
