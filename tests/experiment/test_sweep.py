"""``testbed sweep``: one axis, two points, two schemes, few rounds of 8x8 digits (the CI-sized sweep)."""

import json

import pytest

from testbed.cli import main
from testbed.cli.sweep import AXIS_NAMES
from testbed.errors import ConfigError
from testbed.experiment import sweep


def test_the_cli_lists_every_axis_of_the_sweep() -> None:
    assert AXIS_NAMES == tuple(sweep.AXES) == tuple(sweep.DEFAULT_VALUES)


def test_axes_rewrite_the_scenario(tiny_scenario) -> None:
    many = sweep.num_ues(tiny_scenario, 50)
    assert len(many.ues) == 50 and sum(u.weak for u in many.ues) == 20  # the scenario's 40% weak kept
    assert many.link.tdma_cycle_samples == tiny_scenario.link.tdma_cycle_samples * 51 // 11
    assert sum(u.weak for u in sweep.weak_fraction(tiny_scenario, 0.8).ues) == 8
    flat = sweep.snr_spread_db(tiny_scenario, 0.0)
    assert len({u.snr_db for u in flat.ues}) == 1
    wide = [u.snr_db for u in sweep.snr_spread_db(tiny_scenario, 20.0).ues]
    assert max(wide) - min(wide) == pytest.approx(20.0) and wide == sorted(wide)  # the default is in SNR order
    with pytest.raises(ConfigError, match="weak_fraction=1.5"):
        sweep.weak_fraction(tiny_scenario, 1.5)


@pytest.mark.usefixtures("one_torch_thread")
def test_sweep_prints_one_json_with_ratios_to_fedavg_all_and_draws_a_plot(tmp_path, capsys) -> None:
    args = [
        "sweep",
        "--dataset",
        "digits",
        "--rounds",
        "3",
        "--target-accuracy",
        "0.3",
        "--axis",
        "privacy",
        "--values",
        "none",
        "all",
        "--seeds",
        "1",
        "--schemes",
        "hfcl",
        "--json",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["value"] for p in out["points"]] == ["none", "all"] and out["reference"] == "fedavg_all"
    open_point, private = out["points"]
    assert open_point["schemes"]["fedavg_all"]["time_ratio"]["mean"] == 1.0
    assert set(open_point["schemes"]) == {"fedavg_all", "hfcl"} and open_point["not_allowed"] == {}
    assert "hfcl" not in private["schemes"] and "keep theirs" in private["not_allowed"]["hfcl"]
    assert json.loads((tmp_path / "sweep.json").read_text())["points"] == out["points"]
    assert (tmp_path / "sweep.png").stat().st_size > 0
    assert main(["sweep", "--axis", "num_ues", "--values", "ten", "--out", str(tmp_path)]) == 2
    assert "--values for --axis num_ues" in capsys.readouterr().err
