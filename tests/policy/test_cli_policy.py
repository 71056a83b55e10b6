import json

import pytest

from testbed.cli import main


def _bench(capsys, *args):
    assert main(["policy", "bench", "--json", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    return json.loads(out)


def test_bench_meets_the_energy_target_on_the_profiles_scenario(capsys):
    result = _bench(capsys, "--scenario", "profiles", "--deadline-factors", "1.0", "1.5")
    same_deadline = result["deadlines"][0]
    assert same_deadline["deadline_factor"] == 1.0
    assert same_deadline["energy_saving"] >= 0.35 and same_deadline["all_within_budget"]
    assert same_deadline["allocated_round_time_s"] <= result["max_power_round_time_s"] * (1 + 1e-9)
    assert {g["mode"] for g in result["groups"].values()} == {"distributed", "centralized_decoder", "centralized_full"}


@pytest.mark.parametrize("rule", ["capability", "channel"])
def test_bench_ablation_rules_run(capsys, rule):
    result = _bench(capsys, "--scenario", "profiles", "--rule", rule, "--deadline-factors", "1.0")
    assert result["grouping_rule"] == rule and all(g["reason"] for g in result["groups"].values())


def test_bench_on_the_learning_default_scenario(capsys):
    pytest.importorskip("testbed.experiment.scenario")
    result = _bench(capsys, "--deadline-factors", "1.0", "2.0")
    first, loose = result["deadlines"]
    assert 0 < first["energy_saving"] <= loose["energy_saving"] < 1
    assert result["tx_power_control_db"] == 0.0  # its tx_power_dbm includes circuit power


def test_bench_refuses_an_unreadable_scenario(capsys, tmp_path):
    pytest.importorskip("testbed.experiment.scenario")
    assert main(["policy", "bench", "--scenario", str(tmp_path / "missing.toml")]) == 2


def test_compare_trains_the_policy_beside_a_fixed_scheme(capsys):
    pytest.importorskip("testbed.experiment.engine")
    result = _compare(capsys, "hybrid", "policy", "policy_no_alloc")
    s = result["schemes"]
    # Same groups as the fixed hybrid here: same learning; allocation only lowers the energy.
    assert s["policy"]["final_accuracy"] == s["hybrid"]["final_accuracy"] == s["policy_no_alloc"]["final_accuracy"]
    assert s["policy_no_alloc"]["total_energy_j"] == pytest.approx(s["hybrid"]["total_energy_j"])
    assert s["policy"]["total_energy_j"] < s["hybrid"]["total_energy_j"]
    assert s["policy"]["total_time_s"] <= s["hybrid"]["total_time_s"] * (1 + 1e-9)


def _compare(capsys, *schemes):
    args = ["policy", "compare", "--json", "--dataset", "digits", "--rounds", "2", "--schemes", *schemes]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_compare_refuses_unknown_schemes(capsys):
    assert main(["policy", "compare", "--dataset", "digits", "--rounds", "1", "--schemes", "nonsense"]) == 2
    assert "unknown schemes" in capsys.readouterr().err
