import json

import pytest

from testbed.cli import main


def _bench(capsys, *args):
    assert main(["policy", "bench", "--json", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    return json.loads(out)


@pytest.mark.parametrize("rule", ["joint", "joint_snr"])
def test_bench_meets_the_energy_target_on_the_profiles_scenario(capsys, rule):
    result = _bench(capsys, "--scenario", "profiles", "--rule", rule, "--deadline-factors", "1.0", "1.5")
    same_deadline = result["deadlines"][0]
    assert same_deadline["deadline_factor"] == 1.0
    assert same_deadline["energy_saving"] >= 0.35 and same_deadline["all_within_budget"]
    assert same_deadline["allocated_round_time_s"] <= result["max_power_round_time_s"] * (1 + 1e-9)
    modes = {g["mode"] for g in result["groups"].values()}
    if rule == "joint":  # streamed raw data cost the weak UEs less than encoding every round
        assert modes == {"distributed", "centralized_full"}
    else:  # the SNR threshold splits the weak UEs by channel
        assert modes == {"distributed", "centralized_decoder", "centralized_full"}


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
    weak = [result["groups"][f"ue{i}"] for i in range(4)]  # 60 rounds pay for the one-time raw upload
    assert all(g["mode"] == "centralized_full" and "over 60 rounds" in g["reason"] for g in weak)


def test_policy_compare_is_gone_training_goes_through_testbed_compare(capsys):
    assert main(["policy", "compare", "--rounds", "1"]) == 2
    assert "invalid choice: 'compare'" in capsys.readouterr().err


def test_bench_refuses_an_unreadable_scenario(capsys, tmp_path):
    pytest.importorskip("testbed.experiment.scenario")
    assert main(["policy", "bench", "--scenario", str(tmp_path / "missing.toml")]) == 2


@pytest.mark.parametrize(
    ("clock", "name"),
    [("ue", "thread_time"), ("thread", "thread_time"), ("cpu", "process_time"), ("wall", "perf_counter")],
)
def test_capability_prints_two_measurements_and_their_spread(capsys, clock, name):
    assert main(["policy", "capability", "--json", "--repeats", "2", "--block-s", "0.01", "--clock", clock]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    assert out.count("\n") == 1 and result["blocks_per_measurement"] == 2
    assert result["clock_option"] == clock and result["clock"] == name  # 'ue' with 1 torch thread: thread CPU
    a, b = result["samples_per_s"]
    assert a > 0 and b > 0 and result["relative_spread"] == pytest.approx(abs(a - b) / ((a + b) / 2))
    assert result["passes_per_block"] >= 1 and len(result["wall_s_per_measurement"]) == 2
