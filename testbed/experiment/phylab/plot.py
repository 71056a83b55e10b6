"""The figure of ``testbed phy ber``: PER curves per MCS for both channels, uncoded BER against theory."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_ber(result: dict, path: Path) -> None:
    """Write a PNG with one PER panel per channel and one BER panel (measured dots, theory lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.phy import MCS_TABLE
    from testbed.phy.theory import uncoded_ber

    channels = [c for c in ("awgn", "multipath") if c in result]
    fig, axes = plt.subplots(1, len(channels) + 1, figsize=(6 * (len(channels) + 1), 4.5), squeeze=False)
    for ax, channel in zip(axes[0], channels, strict=False):
        for i, (mcs, row) in enumerate(result[channel].items()):
            for key, style, label in (("points", "o-", mcs), ("genie_points", ":", None)):
                pts = row[key]
                per = np.array([p["per"] for p in pts])
                floor = 0.5 / max(p["frames"] for p in pts)
                snr = [p["snr_db"] for p in pts]
                ax.semilogy(snr, np.maximum(per, floor), style, color=f"C{i % 10}", label=label, markersize=3)
        ax.axhline(0.1, color="k", linewidth=0.5, linestyle=":")
        title = f"PER, {channel} (real receiver; dotted: perfect-CSI genie)"
        ax.set(title=title, xlabel="Es/N0 per subcarrier [dB]", ylabel="PER")
        ax.set_ylim(1e-3, 1.1)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    for i, (mcs, row) in enumerate(result.get("uncoded", {}).items()):
        pts = row["points"]
        snr = np.array([p["snr_db"] for p in pts])
        grid = np.linspace(snr.min() - 1, snr.max() + 1, 50)
        color = f"C{i}"
        ax.semilogy(snr, [max(p["raw_ber"], 1e-7) for p in pts], "o", color=color, label=f"{mcs} measured")
        ax.semilogy(grid, uncoded_ber(grid, MCS_TABLE[mcs].bits_per_symbol), "-", color=color, linewidth=0.8)
    ax.axhline(1e-3, color="k", linewidth=0.5, linestyle=":")
    ax.set(title="Uncoded BER, AWGN (lines: theory)", xlabel="Es/N0 per subcarrier [dB]", ylabel="BER")
    ax.grid(True, which="both", alpha=0.3)
    if result.get("uncoded"):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
