"""Time, energy and uplink bits to the target accuracy: one summary per run, one table per run directory.

``to_target`` is the one summary of a run's per-round metrics (with what left the UEs: ``uploaded``);
``testbed compare`` writes it to summary.json and the report computes the same from whatever run directory it
reads. ``best_per_column`` marks the best scheme per column for both, and ``text_table`` is the one text form of
the table (``testbed compare``, ``testbed sweep``): the method named, the best figures starred, schemes a regime
does not allow listed with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
UPLOADED = ("centralized_full", "raw"), ("centralized_decoder", "symbols"), ("distributed", "gradients")


def to_target(
    history: Sequence[dict[str, Any]], target: float, classes: Sequence[int] = (), time_key: str = "virtual_time_s"
) -> dict[str, Any]:
    """Summary of one run's per-round metrics (the engine's rows): the final accuracy (per class when the rows
    carry ``class_accuracy``; with ``classes`` also their mean, ``final_accuracy_on_classes``), and the time
    (``time_key`` of the rows), UE energy and uplink bits spent until the accuracy first reached ``target``
    (None if never)."""
    hit = next((m for m in history if m["accuracy"] >= target), None)
    last = history[-1]
    sent = {what: sorted({u for m in history for u, mode in (m.get("modes") or {}).items() if mode == key})
            for key, what in UPLOADED}  # fmt: skip
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
        "uploaded": {**sent, "raw_samples": last.get("raw_samples")},  # UEs per kind of upload; raw samples sent
    }


def best_per_column(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Per column of COLUMNS, the scheme(s) with the best value among ``rows`` (ties all named)."""
    best: dict[str, list[str]] = {}
    for key, _, better in COLUMNS:
        values = {n: r[key] for n, r in rows.items() if r.get(key) is not None}
        if values:
            top = (max if better == "max" else min)(values.values())
            best[key] = [n for n, v in values.items() if v == top]
    return best


def uploaded_text(row: Mapping[str, Any]) -> str:
    """What left the UEs in a run, e.g. "raw 4/10 UEs (1600 samples), gradients 6/10"."""
    sent = row.get("uploaded") or {}
    everyone = {u for _, what in UPLOADED for u in sent.get(what, [])}
    parts = []
    for _, what in UPLOADED:
        if sent.get(what):
            samples = f" ({sent['raw_samples']} samples)" if what == "raw" and sent.get("raw_samples") else ""
            parts.append(f"{what} {len(sent[what])}/{len(everyone)} UEs{samples}")
    return ", ".join(parts) or "-"


def text_table(
    schemes: Mapping[str, Mapping[str, Any]],
    not_allowed: Mapping[str, str] = {},  # noqa: B006  # read only
    *,
    weak_classes: bool = False,
    regime: str | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of the to-target table: the method's row says so, the best figure per column carries a
    star, each row says what its scheme uploaded, and a scheme the regime does not allow gets a row with why.
    ``regime`` adds a first column (tables of several regimes are stacked)."""
    best = best_per_column(schemes)
    keys = [k for k, _, _ in COLUMNS]
    header = [*(["regime"] if regime else []), "scheme", "final acc",
              *(["acc on weak classes"] if weak_classes else []), "time to target s", "energy to target J",
              "uplink Mbit to target", "rounds", "uploaded"]  # fmt: skip
    rows = []
    for name, r in schemes.items():

        def cell(key: str, scale: float = 1.0, r: Mapping[str, Any] = r, name: str = name) -> Any:
            value = r.get(key)
            if value is None:
                return None
            text = f"{value / scale:.3f}" if key == "final_accuracy" else f"{value / scale:.2f}"
            text = str(value) if key == "rounds_to_target" else text
            return text + (" *" if name in best.get(key, []) else "")

        label = f"{name} (the method)" if name == METHOD else name
        on_classes = r.get("final_accuracy_on_classes")
        rows.append([*([regime] if regime else []), label, cell(keys[0]),
                     *([None if on_classes is None else f"{on_classes:.3f}"] if weak_classes else []),
                     cell(keys[1]), cell(keys[2]), cell(keys[3], 1e6), cell(keys[4]), uploaded_text(r)])  # fmt: skip
    for name, why in not_allowed.items():
        blank = [None] * (5 + weak_classes)
        rows.append([*([regime] if regime else []), name, *blank, f"not allowed: {why}"])
    return header, rows


def target_table(run: Run) -> dict[str, Any]:
    """Per scheme the :func:`to_target` summary on the scheme's own clock (``clock``), plus ``best``: per column
    the scheme(s) with the best value (ties all named), and ``method``: the full method's name if it ran."""
    rows = {}
    for name, scheme in run.schemes.items():
        time_key = "virtual_time_s" if scheme.clock == "virtual" else "wall_time_s"
        history = [asdict(r) for r in scheme.rounds if r.accuracy is not None and r.__dict__[time_key] is not None]
        if history:
            rows[name] = {"clock": scheme.clock, **to_target(history, run.target_accuracy, time_key=time_key)}
    return {
        "target_accuracy": run.target_accuracy,
        "method": METHOD if METHOD in rows else None,
        "schemes": rows,
        "best": best_per_column(rows),
    }
