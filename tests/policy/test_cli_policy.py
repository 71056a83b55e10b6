import json

from testbed.cli import main


def test_bench_prints_one_json_object_and_meets_the_energy_target(capsys):
    assert main(["policy", "bench", "--json", "--deadline-factors", "1.0", "1.5"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    same_deadline = result["deadlines"][0]
    assert same_deadline["deadline_factor"] == 1.0
    assert same_deadline["energy_saving"] >= 0.35 and same_deadline["all_within_budget"]
    assert same_deadline["allocated_round_time_s"] <= result["max_power_round_time_s"] * (1 + 1e-9)
    assert {g["mode"] for g in result["groups"].values()} == {"distributed", "centralized_decoder", "centralized_full"}


def test_bench_ablation_rules_run(capsys):
    for rule in ("capability", "channel"):
        assert main(["policy", "bench", "--json", "--rule", rule, "--deadline-factors", "1.0"]) == 0
        assert json.loads(capsys.readouterr().out)["grouping_rule"] == rule
