"""The in-process engine: metrics per round, atomic checkpoints, exact resume; and the two commands."""

import json

import pytest

from testbed.cli import main
from testbed.errors import ConfigError
from testbed.experiment.engine import CHECKPOINT_FILE, METRICS_FILE, Engine
from testbed.policy.assign import DEFAULT_DEADLINE_FACTOR


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("scheme", ["hybrid", "hfcl", "hybrid_split"])
def test_resume_gives_the_same_metrics_as_an_uninterrupted_run(tmp_path, tiny_scenario, scheme) -> None:
    straight = Engine(tiny_scenario, scheme, tmp_path / "a").run(4)
    first = Engine(tiny_scenario, scheme, tmp_path / "b")
    first.run(2)
    assert not list((tmp_path / "b").glob("*.tmp"))  # temp file replaced atomically
    resumed = Engine(tiny_scenario, scheme, tmp_path / "b").run(4, resume=True)
    assert resumed == straight
    lines = (tmp_path / "b" / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line) for line in lines] == straight
    assert straight[-1]["virtual_time_s"] > straight[0]["virtual_time_s"] > 0
    assert set(straight[0]["modes"].values()) == ({"centralized_decoder", "distributed"} if scheme != "hfcl"
                                                  else {"centralized_full", "distributed"})  # fmt: skip
    if scheme == "hybrid_split":  # the resumed round 2 answered round 1's symbol gradients, as the straight run did
        hybrid = Engine(tiny_scenario, "hybrid").run(4)
        more = [m["round_uplink_bits"] > h["round_uplink_bits"] for m, h in zip(straight, hybrid, strict=True)]
        assert more == [False, True, True, True]  # the encoder gradient rides in the uploads from round 1 on


@pytest.mark.usefixtures("one_torch_thread")
def test_resume_refuses_missing_or_foreign_checkpoint(tmp_path, tiny_scenario) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        Engine(tiny_scenario, "hybrid", tmp_path).run(2, resume=True)
    Engine(tiny_scenario, "hybrid", tmp_path).run(1)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    with pytest.raises(ConfigError, match="scheme"):
        Engine(tiny_scenario, "fedavg_all", tmp_path).run(2, resume=True)


@pytest.mark.usefixtures("one_torch_thread")
def test_train_and_compare_commands_print_one_json_object(tmp_path, capsys) -> None:
    tiny = ["--dataset", "digits", "--rounds", "2"]
    assert main(["train", "--scheme", "fedavg_deadline", "--out", str(tmp_path / "t"), "--json", *tiny]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rounds"] == 2 and out["ue_links"]["ue0"].startswith("bpsk-1/2")  # 5 dB < qpsk-1/2 + 3 dB margin
    assert main(["train", "--scheme", "fedavg_deadline", "--out", str(tmp_path / "t"), "--resume", "--json",
                 "--dataset", "digits", "--rounds", "3"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["rounds"] == 3
    args = ["compare", "--schemes", "fedavg_all", "hybrid", "--out", str(tmp_path / "c"), "--json", *tiny]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("fedavg_all", "hybrid"):
        row = summary["schemes"][name]
        assert {"final_accuracy", "time_to_target_s", "energy_to_target_j", "uplink_bits_to_target"} <= set(row)
    assert all((tmp_path / "c" / p).exists() for p in ("accuracy_vs_time.png", "accuracy_vs_energy.png"))
    assert summary["schemes"]["hybrid"]["total_time_s"] < summary["schemes"]["fedavg_all"]["total_time_s"]


@pytest.mark.usefixtures("one_torch_thread")
def test_codec_alone_learns_through_the_channel(tiny_scenario) -> None:
    from testbed.experiment.codec_bench import train_codec
    from testbed.experiment.engine import split_for

    train, test = split_for(tiny_scenario)
    cfg = tiny_scenario.codec_config(train.image_size_px, train.num_classes)
    result = train_codec(cfg, train, test, 10.0, steps=150, seed=3)
    assert result.test_accuracy > 0.7  # chance is 0.1


@pytest.mark.usefixtures("one_torch_thread")
def test_compare_runs_baselines_and_policy_schemes_through_one_engine(tmp_path, capsys) -> None:
    args = ["compare", "--json", "--no-plots", "--dataset", "digits", "--rounds", "2", "--out", str(tmp_path)]
    assert main([*args, "--schemes", "hybrid", "policy", "policy_no_alloc", "policy_snr_threshold"]) == 0
    s = json.loads(capsys.readouterr().out)["schemes"]
    # Two rounds do not pay for a raw upload: the policy sends symbols (the hybrid's groups); allocation lowers
    # the energy and lengthens a round's compute + upload by at most the deadline factor.
    assert s["policy"]["final_accuracy"] == s["hybrid"]["final_accuracy"] == s["policy_no_alloc"]["final_accuracy"]
    assert s["policy_no_alloc"]["total_energy_j"] == pytest.approx(s["hybrid"]["total_energy_j"])
    assert s["policy"]["total_energy_j"] < s["hybrid"]["total_energy_j"]
    assert s["policy"]["total_time_s"] <= s["hybrid"]["total_time_s"] * DEFAULT_DEADLINE_FACTOR
    assert s["policy_snr_threshold"] == s["policy"]  # all weak UEs below 15 dB: the same groups here
    for row in s.values():
        assert {"final_accuracy", "time_to_target_s", "energy_to_target_j", "uplink_bits_to_target"} <= set(row)


@pytest.mark.usefixtures("one_torch_thread")
def test_policy_sends_raw_data_when_the_horizon_pays_and_schemes_can_be_passed_as_objects(tiny_scenario) -> None:
    import msgspec

    from testbed.learning.assignment import FixedAssignment
    from testbed.learning.schemes import Scheme
    from testbed.mode import Mode

    long = msgspec.structs.replace(tiny_scenario, run=msgspec.structs.replace(tiny_scenario.run, rounds=200))
    modes = Engine(long, "policy").step()["modes"]
    assert [modes[f"ue{i}"] for i in range(4)] == ["centralized_full"] * 4
    assert {modes[f"ue{i}"] for i in range(4, 10)} == {"distributed"}
    short = Engine(tiny_scenario, "policy").step()["modes"]  # 3 rounds do not pay for the raw upload ...
    budget = msgspec.structs.replace(
        tiny_scenario, policy=msgspec.structs.replace(tiny_scenario.policy, raw_upload_budget_s=1.0)
    )
    budgeted = Engine(budget, "policy").step()["modes"]  # ... unless it fits the one-time budget
    assert short["ue0"] == "centralized_decoder" and budgeted["ue0"] == "centralized_full"
    custom = Scheme("all_raw", FixedAssignment(Mode.CENTRALIZED_FULL, Mode.CENTRALIZED_FULL))
    engine = Engine(tiny_scenario, custom)
    assert engine.step()["scheme"] == "all_raw" and set(engine.runner.raw_uploaded) != {0}
    with pytest.raises(ConfigError, match="unknown scheme 'nonsense'"):
        Engine(tiny_scenario, "nonsense")


def test_the_engines_ues_choose_their_modes_from_first_info_as_the_daemons_do(tiny_scenario) -> None:
    """A policy scheme's modes are the UEs' own MODE_CHOICEs, checked by the BS; a baseline's are assigned
    (rule fixed) and the UEs answer with them."""
    engine = Engine(tiny_scenario, "policy")
    engine.run(2)
    first, second = engine.records[:2]
    names = [p.name for p in engine.profiles]
    for record in (first, second):
        assert set(record["choices"]) == set(names) and record["choices_refused"] == {}
        assert {ue: c["mode"] for ue, c in record["choices"].items()} == record["modes"]
        assert all("UE chose" in c["reason"] or "capability" in c["reason"] for c in record["choices"].values())
    assert {c["channel_source"] for c in first["choices"].values()} == {"downlink"}  # sounded before round 1
    assert {c["channel_source"] for c in second["choices"].values()} == {"uplink"}
    baseline = Engine(tiny_scenario, "fedavg_all")
    baseline.run(1)
    record = baseline.records[0]
    assert {c["mode"] for c in record["choices"].values()} == {"distributed"}
    assert all(c["reason"] == "assigned distributed by the BS" for c in record["choices"].values())
