"""The figure of ``testbed phy ber``: PER curves per MCS for both channels, uncoded BER against theory.

Each MCS keeps one colour and marker in every panel (plotstyle.style); a point where nothing was lost is drawn
as a hollow downward triangle at its rule-of-three upper bound, not at a floor that would look measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from testbed.experiment.phylab.ber import TARGET_PER
from testbed.experiment.plotstyle import TARGET_LINE, style, zero_bound

TARGET_BER = 1e-3  # the uncoded panel's reference level (the BER the issue-2 targets quote)


def _curve(ax: Any, snr: list[float], counts: list[tuple[int, int]], st: dict[str, Any], **line: Any) -> float:
    """Measured rates as a line with markers, zero-count points as upper bounds; returns the lowest value drawn."""
    drawn = [zero_bound(k, n) for k, n in counts]
    measured = [(x, v) for x, (v, bound) in zip(snr, drawn, strict=True) if not bound]
    bounds = [(x, v) for x, (v, bound) in zip(snr, drawn, strict=True) if bound]
    if measured:
        ax.semilogy(*zip(*measured, strict=True), color=st["color"], **line)
    if bounds:
        ax.semilogy(*zip(*bounds, strict=True), linestyle="none", marker="v", markerfacecolor="none",
                    color=st["color"], markersize=line.get("markersize", 4))  # fmt: skip
    return min((v for v, _ in drawn), default=1.0)


def _bound_legend(ax: Any, what: str) -> None:
    ax.plot([], [], linestyle="none", marker="v", markerfacecolor="none", color="grey",
            label=f"no {what} lost: 95% upper bound (3/N)")  # fmt: skip


def plot_ber(result: dict, path: Path) -> None:
    """Write a PNG with one PER panel per channel and one BER panel (measured points, theory lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.phy import MCS_TABLE
    from testbed.phy.theory import uncoded_ber

    order = list(MCS_TABLE)
    channels = [c for c in ("awgn", "multipath") if c in result]
    fig, axes = plt.subplots(1, len(channels) + 1, figsize=(6.5 * (len(channels) + 1), 5), squeeze=False)
    for ax, channel in zip(axes[0], channels, strict=False):
        low = 1.0
        for mcs, row in result[channel].items():
            st = style(order.index(mcs))
            for key, extra in (
                ("points", {"marker": st["marker"], "linestyle": "-", "markersize": 4, "label": mcs}),
                ("genie_points", {"linestyle": ":", "linewidth": 1.0}),
            ):
                pts = row[key]
                counts = [(p["frame_errors"], p["frames"]) for p in pts]
                low = min(low, _curve(ax, [p["snr_db"] for p in pts], counts, st, **extra))
        ax.axhline(TARGET_PER, label=f"target PER {TARGET_PER:.0%}", **TARGET_LINE)
        ax.plot([], [], ":", color="grey", label="perfect-CSI genie")
        _bound_legend(ax, "frame")
        ax.set(title=f"PER, {channel} (real receiver; dotted: genie)", xlabel="Es/N0 per subcarrier [dB]", ylabel="PER")
        ax.set_ylim(min(1e-3, low / 2), 1.1)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    for mcs, row in result.get("uncoded", {}).items():
        st = style(order.index(mcs))
        pts = row["points"]
        snr = np.array([p["snr_db"] for p in pts])
        counts = [(p["bit_errors"], p["bits"]) for p in pts]
        _curve(ax, list(snr), counts, st, marker=st["marker"], linestyle="none", label=f"{mcs} measured")
        grid = np.linspace(snr.min() - 1, snr.max() + 1, 50)
        ax.semilogy(grid, uncoded_ber(grid, MCS_TABLE[mcs].bits_per_symbol), "-", color=st["color"], linewidth=0.8)
    ax.axhline(TARGET_BER, label=f"BER {TARGET_BER:g}", **TARGET_LINE)
    if result.get("uncoded"):
        _bound_legend(ax, "bit")
    ax.set(title="Uncoded BER, AWGN (lines: theory)", xlabel="Es/N0 per subcarrier [dB]", ylabel="BER")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
