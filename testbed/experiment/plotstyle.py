"""What every figure of the testbed shares: one distinct colour and marker per curve, curves that coincide
drawn once and named together, labelled target lines, and zero-count points drawn as upper bounds.

Kept free of matplotlib imports so the helpers can be tested without drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Twelve colours (matplotlib's tab10, then black and indigo), each with its own marker: enough for every
# scheme of `testbed compare` and every MCS of `testbed phy ber`. Past twelve a curve gets the next colour with
# another line style, so no two curves share a full style.
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#000000", "#393b79",
)  # fmt: skip
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
LINESTYLES = ("-", "--", "-.", ":")
#: 95% one-sided upper bound on a rate with 0 events in n trials is about 3/n (the "rule of three",
#: Hanley and Lippman-Hand, JAMA 1983): what a point with no errors may be drawn at, as a bound.
RULE_OF_THREE = 3.0
TARGET_LINE = {"color": "black", "linewidth": 0.8, "linestyle": ":"}


def style(i: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``i``-th curve: distinct for every ``i`` below 48."""
    return {
        "color": COLOURS[i % len(COLOURS)],
        "marker": MARKERS[(i + i // len(COLOURS)) % len(MARKERS)],
        "linestyle": LINESTYLES[(i // len(COLOURS)) % len(LINESTYLES)],
    }


def merge_identical(series: Mapping[str, Any]) -> list[list[str]]:
    """Names grouped by equal series (any comparable value, e.g. a tuple of (x, y) tuples), in first-seen order:
    curves that would hide each other are drawn once, their legend naming them all."""
    groups: list[tuple[Any, list[str]]] = []
    for name, data in series.items():
        for seen, names in groups:
            if seen == data:
                names.append(name)
                break
        else:
            groups.append((data, [name]))
    return [names for _, names in groups]


def legend_label(names: Sequence[str]) -> str:
    """One legend entry for curves that coincide: ``"a = b (identical)"``."""
    return names[0] if len(names) == 1 else " = ".join(names) + " (identical)"


def zero_bound(count: int, trials: int) -> tuple[float, bool]:
    """(value to draw, is it an upper bound) for ``count`` events in ``trials``: a measured rate, or for
    zero events the rule-of-three bound, never a floor that looks like a measurement."""
    if trials <= 0:
        raise ValueError("a rate needs at least one trial")
    return (count / trials, False) if count else (min(1.0, RULE_OF_THREE / trials), True)
