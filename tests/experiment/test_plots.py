"""Figures: distinct styles, coinciding curves named together, the method on top, zero counts as bounds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from testbed.experiment.compare import plot  # noqa: E402
from testbed.experiment.phylab.plot import _curve, plot_ber  # noqa: E402
from testbed.experiment.plotstyle import legend_label, merge_identical, style, zero_bound  # noqa: E402
from testbed.experiment.report.figures import draw_order  # noqa: E402
from testbed.experiment.report.runs import METHOD  # noqa: E402


def test_styles_are_distinct_and_identical_series_are_grouped():
    styles = [tuple(sorted(style(i).items())) for i in range(48)]
    assert len(set(styles)) == 48
    first = [style(i) for i in range(12)]  # every MCS of `phy ber`, every scheme of `compare`
    assert len({s["color"] for s in first}) == len({s["marker"] for s in first}) == 12
    assert merge_identical({"a": (1, 2), "b": (1, 3), "c": (1, 2)}) == [["a", "c"], ["b"]]
    assert legend_label(["policy", "policy_no_alloc"]) == "policy = policy_no_alloc (identical)"


def test_zero_counts_are_upper_bounds_not_floors():
    assert zero_bound(5, 100) == (0.05, False)
    assert zero_bound(0, 1000) == (0.003, True)
    assert zero_bound(0, 2) == (1.0, True)
    with pytest.raises(ValueError):
        zero_bound(0, 0)


def _history(acc: list[float]) -> list[dict]:
    return [{"virtual_time_s": 1.0 + r, "energy_j": 2.0 * (r + 1), "accuracy": a} for r, a in enumerate(acc)]


def test_compare_draws_identical_curves_once_and_the_method_last(tmp_path):
    histories = {
        "fedavg_all": _history([0.1, 0.3]),
        METHOD: _history([0.2, 0.6]),
        "hybrid": _history([0.2, 0.5]),
        "policy_no_alloc": _history([0.2, 0.6]),
    }
    curves = {name: [(m["virtual_time_s"], m["accuracy"]) for m in h] for name, h in histories.items()}
    order = draw_order(curves)
    assert [names for names, _ in order] == [["fedavg_all"], ["hybrid"], [METHOD, "policy_no_alloc"]]
    result = {"histories": histories, "target_accuracy": 0.5, "scenario": "s", "partition": "iid", "seed": 1}
    assert all(p.stat().st_size > 0 for p in plot(result, tmp_path))


def test_per_points_without_errors_are_drawn_as_hollow_triangles_at_three_over_n():
    fig, ax = plt.subplots()
    low = _curve(ax, [0.0, 1.0, 2.0], [(50, 100), (10, 100), (0, 1000)], style(0), marker="o", label="x")
    line, bound = ax.lines
    assert list(line.get_ydata()) == [0.5, 0.1] and line.get_marker() == "o"
    assert list(bound.get_ydata()) == [0.003] and bound.get_marker() == "v" and bound.get_markerfacecolor() == "none"
    assert low == 0.003
    plt.close(fig)


def test_ber_figure_is_written(tmp_path):
    pt = {"snr_db": 0.0, "frames": 10, "frame_errors": 0, "bits": 800, "bit_errors": 0}
    row = {"points": [pt, {**pt, "snr_db": -2.0, "frame_errors": 5}], "genie_points": [pt]}
    result = {"awgn": {"qpsk-1/2": row}, "uncoded": {"qpsk-1/2": {"points": [pt]}}}
    plot_ber(result, tmp_path / "ber.png")
    assert (tmp_path / "ber.png").stat().st_size > 0
