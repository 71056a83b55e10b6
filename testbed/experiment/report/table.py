"""Time, energy and uplink bits to the target accuracy: one summary per run, one table per run directory.

``to_target`` is the one summary of a run's per-round metrics; ``testbed compare`` writes it to summary.json
and the report computes the same from whatever run directory it reads, then marks the best scheme per column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from testbed.experiment.report.runs import METHOD, Run

# (key, heading, better): the table's columns; "min" or "max" says which value is best.
COLUMNS = (
    ("final_accuracy", "final accuracy", "max"),
    ("time_to_target_s", "time to target [s]", "min"),
    ("energy_to_target_j", "UE energy to target [J]", "min"),
    ("uplink_bits_to_target", "uplink bits to target", "min"),
    ("rounds_to_target", "rounds to target", "min"),
)


def to_target(
    history: Sequence[dict[str, Any]], target: float, classes: Sequence[int] = (), time_key: str = "virtual_time_s"
) -> dict[str, Any]:
    """Summary of one run's per-round metrics (the engine's rows): the final accuracy (per class when the rows
    carry ``class_accuracy``; with ``classes`` also their mean, ``final_accuracy_on_classes``), and the time
    (``time_key`` of the rows), UE energy and uplink bits spent until the accuracy first reached ``target``
    (None if never)."""
    hit = next((m for m in history if m["accuracy"] >= target), None)
    last = history[-1]
    per_class = last.get("class_accuracy") or []
    on_classes = [per_class[c] for c in classes if c < len(per_class) and per_class[c] is not None]
    mean_on = {"final_accuracy_on_classes": sum(on_classes) / len(on_classes) if on_classes else None}
    return {
        "final_accuracy": last["accuracy"],
        "final_class_accuracy": per_class,
        **(mean_on if classes else {}),
        "time_to_target_s": hit[time_key] if hit else None,
        "energy_to_target_j": hit["energy_j"] if hit else None,
        "uplink_bits_to_target": hit["uplink_bits"] if hit else None,
        "rounds_to_target": hit["round"] + 1 if hit else None,
        "rounds": len(history),
        "total_time_s": last[time_key],
        "total_energy_j": last["energy_j"],
        "total_uplink_bits": last["uplink_bits"],
    }


def target_table(run: Run) -> dict[str, Any]:
    """Per scheme the :func:`to_target` summary on the scheme's own clock (``clock``), plus ``best``: per column
    the scheme(s) with the best value (ties all named), and ``method``: the full method's name if it ran."""
    rows = {}
    for name, scheme in run.schemes.items():
        time_key = "virtual_time_s" if scheme.clock == "virtual" else "wall_time_s"
        history = [asdict(r) for r in scheme.rounds if r.accuracy is not None and r.__dict__[time_key] is not None]
        if history:
            rows[name] = {"clock": scheme.clock, **to_target(history, run.target_accuracy, time_key=time_key)}
    best: dict[str, list[str]] = {}
    for key, _, better in COLUMNS:
        values = {n: r[key] for n, r in rows.items() if r[key] is not None}
        if values:
            top = (max if better == "max" else min)(values.values())
            best[key] = [n for n, v in values.items() if v == top]
    return {
        "target_accuracy": run.target_accuracy,
        "method": METHOD if METHOD in rows else None,
        "schemes": rows,
        "best": best,
    }
