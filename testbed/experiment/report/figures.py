"""The report's figures, one PNG each (matplotlib Agg), in the project's plot style (plotstyle.py).

Every function writes one file and returns nothing; a figure whose data the run did not record is still
written, as a panel that says what is missing and which field would carry it, so the page has the same
figures for every run. ``accuracy_figure`` is also what ``testbed compare`` draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from testbed.errors import StateError  # noqa: E402
from testbed.experiment.plotstyle import COLOURS, TARGET_LINE, legend_label, merge_identical, style  # noqa: E402
from testbed.experiment.report.runs import METHOD, SYMBOLS_DIR, SchemeRun  # noqa: E402
from testbed.mode import Mode  # noqa: E402
from testbed.phy.mcs import MCS_TABLE  # noqa: E402

Curve = Sequence[tuple[float, float]]
DPI = 110
# One colour per mode, the same in every figure; white: the UE was not in the round.
MODE_COLOURS = {
    Mode.DISTRIBUTED: COLOURS[0],
    Mode.CENTRALIZED_DECODER: COLOURS[1],
    Mode.CENTRALIZED_FULL: COLOURS[2],
    Mode.IDLE: "#c7c7c7",
}
ABSENT_COLOUR = "#ffffff"
MIN_BAR = 0.08  # height of a timeline bar for a UE in the round that uploaded nothing
MAX_UES_DRAWN = 24  # past this, per-UE panels show the first ones and say how many are left out


def draw_order(curves: Mapping[str, Curve]) -> list[tuple[list[str], Curve]]:
    """(names, curve) per distinct curve: equal curves share one entry, and the entry holding the method comes
    last so it is drawn on top."""
    groups = sorted(merge_identical({n: tuple(c) for n, c in curves.items()}), key=lambda names: METHOD in names)
    return [(names, curves[names[0]]) for names in groups]


def accuracy_figure(
    curves: Mapping[str, Curve], xlabel: str, target: float, title: str, path: Path, *, log_x: bool = True
) -> None:
    """Accuracy against one x (time, energy) per scheme: a distinct colour and marker each, coinciding curves
    drawn once and named together, the method on top with a heavier line, the target line labelled."""
    order = list(curves)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for names, curve in draw_order(curves):
        x, y = zip(*curve, strict=True) if curve else ((), ())
        on_top = METHOD in names
        ax.plot(x, y, label=legend_label(names), markevery=max(1, len(x) // 12), markersize=7 if on_top else 5,
                linewidth=2.4 if on_top else 1.2, zorder=10 if on_top else 2,
                **style(order.index(names[0])))  # fmt: skip
    ax.axhline(target, label=f"target accuracy {target:.2f}", **TARGET_LINE)
    xs = [x for c in curves.values() for x, _ in c]
    if log_x and xs and min(xs) > 0 and max(xs) > 10 * min(xs):  # a log axis only where it spans a decade
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)


def sweep_figure(result: Mapping[str, Any], path: Path) -> None:
    """``testbed sweep``'s figure: time and energy to target relative to the reference (fedavg_all) against the
    axis, one panel each; per scheme a distinct colour and marker at the seeds' mean and a bar over their spread
    (min to max); schemes with identical points named together; the method on top; the reference line labelled.
    A value where a scheme never reached the target (or was not allowed) has no point."""
    points = result["points"]
    categorical = any(isinstance(p["value"], str) for p in points)
    xs = list(range(len(points))) if categorical else [float(p["value"]) for p in points]
    names = list(dict.fromkeys(n for p in points for n in p["schemes"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "time_ratio", "time"), (axes[1], "energy_ratio", "UE energy")):
        series = {n: tuple(tuple(p["schemes"].get(n, {}).get(key, {}).get(k) for k in ("mean", "min", "max"))
                           for p in points) for n in names}  # fmt: skip
        groups = sorted(merge_identical(series), key=lambda g: METHOD in g)
        for group in groups:
            on_top = METHOD in group
            mean = [np.nan if v[0] is None else v[0] for v in series[group[0]]]
            low = [0.0 if v[0] is None else v[0] - v[1] for v in series[group[0]]]
            high = [0.0 if v[0] is None else v[2] - v[0] for v in series[group[0]]]
            ax.errorbar(xs, mean, yerr=[low, high], capsize=3, label=legend_label(group), zorder=10 if on_top else 2,
                        linewidth=2.4 if on_top else 1.2, markersize=7 if on_top else 5,
                        **style(names.index(group[0])))  # fmt: skip
        ax.axhline(1.0, label=f"{result['reference']} (= 1)", **TARGET_LINE)
        ax.set_xlabel(result["axis"])
        ax.set_ylabel(f"{label} to {result['target_accuracy']:.2f} / {result['reference']}'s")
        if categorical:
            ax.set_xticks(xs, [str(p["value"]) for p in points])
        elif len(xs) > 1 and min(xs) > 0 and max(xs) >= 10 * min(xs):
            ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)  # per panel: curves identical in one panel may differ in the other
    fig.suptitle(f"{result['scenario']}: seeds {result['seeds']} (bars: min..max over the seeds)", fontsize=9)
    _save(fig, path)


def placeholder(path: Path, title: str, message: str) -> None:
    """A panel saying what the run did not record (and what would carry it)."""
    fig, ax = plt.subplots(figsize=(9, 2.6))
    _note(ax, title, message)
    _save(fig, path)


def timeline_figure(runs: Sequence[SchemeRun], path: Path) -> None:
    """Per scheme, one strip per UE and one bar per round: colour = mode, height = the UE's uplink airtime
    (else its uplink bytes, else full height when neither was recorded: the modes alone)."""
    ues = sorted({ue for run in runs for r in run.rounds for ue in r.modes})[:MAX_UES_DRAWN]
    heights = len(runs) * max(1, len(ues))
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 0.9 + 0.28 * heights + 0.5 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        rounds = [r.round for r in run.rounds]
        if all(r.airtime_s for r in run.rounds):
            what, per_ue = "uplink airtime [s]", [r.airtime_s or {} for r in run.rounds]
        elif all(r.uplink_bytes is not None for r in run.rounds):
            what, per_ue = "uplink bytes (airtime not recorded)", [r.uplink_bytes or {} for r in run.rounds]
        else:
            what, per_ue = "airtime not recorded: modes only", [dict.fromkeys(r.modes, 1.0) for r in run.rounds]
        top = max([float(v) for d in per_ue for v in d.values()] + [1e-12])
        for j, ue in enumerate(ues):
            base = len(ues) - 1 - j
            colours = [MODE_COLOURS.get(r.modes.get(ue), ABSENT_COLOUR) for r in run.rounds]  # type: ignore[call-overload]
            # a UE in the round keeps a sliver of its mode's colour even with nothing uploaded (late, idle)
            h = [max(MIN_BAR, 0.85 * float(d.get(ue, 0.0)) / top) if ue in r.modes else 0.0
                 for r, d in zip(run.rounds, per_ue, strict=True)]  # fmt: skip
            ax.bar(rounds, h, bottom=base, width=0.9, color=colours, edgecolor="none")
        ax.set_yticks([len(ues) - 1 - j + 0.4 for j in range(len(ues))], ues, fontsize=7)
        ax.set_ylim(0, max(1, len(ues)))
        scale = f" (tallest {top:.3g})" if "only" not in what else ""
        ax.set_title(f"{run.name}: bar height = {what}{scale}", fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [Patch(color=c, label=str(m)) for m, c in MODE_COLOURS.items()]
    handles.append(Patch(facecolor=ABSENT_COLOUR, edgecolor="black", label="not in the round"))
    fig.legend(handles=handles, fontsize=7, loc="upper center", ncol=len(handles))
    _save(fig, path, top_in=0.35)


def _mcs_rate(name: str) -> float:
    m = MCS_TABLE.get(name)
    return 0.0 if m is None else m.bits_per_symbol * float(m.code_rate or 1)


def channel_figure(run: SchemeRun, path: Path) -> None:
    """Left: SNR per UE and round (the BS's uplink effective SNR solid, the UE's downlink report dashed), or,
    where no SNR was recorded, the uplink MCS the BS chose per UE and round (its choice follows the effective
    SNR). Right: SNR per UE and subcarrier in the last round that carries it, or a note that none was recorded."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    ues = sorted({ue for r in run.rounds for ue in r.modes})[:MAX_UES_DRAWN]
    if any(r.snr_db for r in run.rounds):
        for i, ue in enumerate(ues):
            st = style(i)
            for kind, ls in (("uplink_effective", "-"), ("downlink", "--")):
                pts = [(r.round, r.snr_db[kind][ue]) for r in run.rounds if ue in r.snr_db.get(kind, {})]
                if pts:
                    x, y = zip(*pts, strict=True)
                    left.plot(x, y, color=st["color"], marker=st["marker"], linestyle=ls, markersize=4,
                              markevery=max(1, len(x) // 10), label=f"{ue} {kind.replace('_', ' ')}")  # fmt: skip
        left.set_ylabel("SNR [dB]")
        left.set_title(f"{run.name}: SNR per UE (solid: uplink effective, dashed: downlink)", fontsize=9)
        left.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
        left.grid(True, alpha=0.3)
    elif any(r.uplink_mcs for r in run.rounds):
        names = sorted({m for r in run.rounds for m in r.uplink_mcs.values()}, key=_mcs_rate)
        grid = np.full((len(ues), len(run.rounds)), np.nan)  # (ue, round): index into names
        for k, r in enumerate(run.rounds):
            for j, ue in enumerate(ues):
                if ue in r.uplink_mcs:
                    grid[j, k] = names.index(r.uplink_mcs[ue])
        cmap = plt.get_cmap("viridis", max(2, len(names)))  # brighter: a faster MCS
        left.imshow(grid, aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, interpolation="nearest",
                    extent=(run.rounds[0].round - 0.5, run.rounds[-1].round + 0.5, len(ues) - 0.5, -0.5))  # fmt: skip
        left.set_yticks(range(len(ues)), ues, fontsize=7)
        left.legend(handles=[Patch(color=cmap(i), label=n) for i, n in enumerate(names)], fontsize=7,
                    loc="center left", bbox_to_anchor=(1.01, 0.5))  # fmt: skip
        left.set_title(f"{run.name}: SNR not recorded; the uplink MCS chosen from it per UE", fontsize=9)
    else:
        _note(left, f"{run.name}: channel", "SNR not recorded (no *_snr_db and no uplink_mcs in the rounds)")
    left.set_xlabel("round")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    last = next((r for r in reversed(run.rounds) if r.subcarrier_snr_db), None)
    if last is not None and last.subcarrier_snr_db:
        rows = sorted(last.subcarrier_snr_db)
        width = max(len(v) for v in last.subcarrier_snr_db.values())
        grid = np.full((len(rows), width), np.nan)  # (ue, used subcarrier) in dB
        for j, ue in enumerate(rows):
            grid[j, : len(last.subcarrier_snr_db[ue])] = last.subcarrier_snr_db[ue]
        im = right.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        right.set_yticks(range(len(rows)), rows, fontsize=7)
        right.set_xlabel("used subcarrier")
        right.set_title(f"SNR per subcarrier, round {last.round}", fontsize=9)
        fig.colorbar(im, ax=right, label="SNR [dB]")
    else:
        _note(right, "SNR per subcarrier", "not recorded\n(a round's subcarrier_snr_db {ue: [dB, ...]} would carry it)")
    _save(fig, path)


def constellation_figure(symbols: Mapping[tuple[int, str], Path], path: Path) -> None:
    """Received semantic symbols of the last round that has any, one panel per UE (I against Q), or a panel
    saying the run holds none and which files would carry them."""
    if not symbols:
        placeholder(path, "constellation of received semantic symbols",
                    f"not recorded: this run holds no {SYMBOLS_DIR}/<round>_<ue>.npy files\n"
                    "(complex, or real (n, 2) I/Q, per UE and round; see docs/report.md)")  # fmt: skip
        return
    last = max(rnd for rnd, _ in symbols)
    ues = sorted(ue for rnd, ue in symbols if rnd == last)[:MAX_UES_DRAWN]
    cols = min(4, len(ues))
    rows = -(-len(ues) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(ues) :]:
        ax.set_axis_off()
    for i, (ax, ue) in enumerate(zip(axes.flat, ues, strict=False)):
        z = load_symbols(symbols[(last, ue)])
        ax.scatter(z.real, z.imag, s=3, alpha=0.5, color=style(i)["color"])
        ax.set_title(f"{ue}, round {last} ({z.size} symbols)", fontsize=8)
        ax.set_xlabel("I")
        ax.set_ylabel("Q")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(True, alpha=0.3)
    _save(fig, path)


def load_symbols(path: Path) -> np.ndarray:
    """A symbols file as (n,) complex: a complex array of any shape, or a real (..., 2) array of (I, Q) pairs;
    anything else is refused (:class:`StateError`, one line)."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read symbols file {path}: {exc}") from exc
    if np.iscomplexobj(a):
        return a.ravel()
    if a.ndim >= 1 and a.shape[-1] == 2 and np.issubdtype(a.dtype, np.number):
        return (a[..., 0] + 1j * a[..., 1]).ravel()
    raise StateError(f"symbols file {path}: {a.dtype} array of shape {a.shape}; expected complex, or real (n, 2) I/Q")


def _note(ax: plt.Axes, title: str, message: str) -> None:
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#555555", transform=ax.transAxes)


def _save(fig: plt.Figure, path: Path, top_in: float = 0.0) -> None:
    """Write and close ``fig``; ``top_in``: inches kept free at the top (for a figure legend)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - top_in / fig.get_figheight()))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
