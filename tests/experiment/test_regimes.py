"""Regimes a scenario can say: privacy (raw samples that may not leave a UE), streaming data, and the schemes
that cannot run in them."""

import json

import pytest

from testbed.cli import main
from testbed.errors import ConfigError, LearningError
from testbed.experiment.engine import Engine
from testbed.experiment.scenario import load_scenario, with_regime
from testbed.experiment.schemes import SchemeNotAllowed, not_allowed
from tests.experiment.conftest import TINY_OVERRIDES

BUDGET = {"policy": {"raw_upload_budget_s": 1e6}}  # every weak UE's raw upload fits: the policy picks raw data


def test_privacy_refuses_the_schemes_that_upload_raw_and_says_why(tiny_scenario) -> None:
    weak = with_regime(tiny_scenario, "weak")
    assert not_allowed("hfcl", weak) is not None and "ue0, ue1, ue2 and 1 more keep theirs" in not_allowed("hfcl", weak)
    assert not_allowed("centralized", weak) is not None
    assert not_allowed("centralized", with_regime(tiny_scenario, "none")) is None
    assert all(not_allowed(n, weak) is None for n in ("fedavg_all", "hybrid", "policy"))
    with pytest.raises(SchemeNotAllowed, match="scheme hfcl is not allowed .* keep theirs"):
        Engine(weak, "hfcl")


@pytest.mark.usefixtures("one_torch_thread")
def test_the_policy_gives_symbols_to_a_ue_that_keeps_its_raw_data() -> None:
    """Fails on the old code: the policy put the weak UEs in centralized_full whatever the scenario said."""
    scenario = load_scenario(overrides={**TINY_OVERRIDES, **BUDGET})
    open_run = Engine(scenario, "policy").run(1)[0]
    assert [open_run["modes"][f"ue{i}"] for i in range(4)] == ["centralized_full"] * 4
    assert open_run["raw_samples"] > 0
    private = Engine(with_regime(scenario, "weak"), "policy").run(2)
    assert all(m["modes"][f"ue{i}"] == "centralized_decoder" for m in private for i in range(4))
    assert private[-1]["raw_samples"] == 0


@pytest.mark.usefixtures("one_torch_thread")
def test_streaming_ues_upload_their_new_samples_every_round(tiny_scenario) -> None:
    """A centralized_full UE that gathers 20 samples a round uploads 20 more each round (4 weak UEs: 80 a round);
    with its whole share from round 0 it uploads once."""
    engine = Engine(with_regime(tiny_scenario, "none", 20), "hfcl")
    assert len(engine.local[0].data) == 20 and len(set(engine.local[0].data.labels.tolist())) >= 5  # shuffled
    streaming = engine.run(3)
    assert [m["raw_samples"] for m in streaming] == [80, 160, 240]
    static = Engine(tiny_scenario, "hfcl").run(2)
    assert static[0]["raw_samples"] == static[1]["raw_samples"] > 240


def test_bad_regime_settings_are_refused_naming_the_field(tmp_path, tiny_scenario) -> None:
    text = (
        'name = "bad"\n[[ues]]\nname = "a"\nboard = "pi_4"\nweak = false\nsnr_db = 10.0\ntx_power_dbm = 20.0\n'
        "samples_per_round = -5\n"
    )
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(ConfigError, match="ues a: samples_per_round=-5 must be >= 0"):
        load_scenario(tmp_path / "s.toml")
    with pytest.raises(ConfigError, match="samples_per_round=-1"):
        with_regime(tiny_scenario, "none", -1)
    with pytest.raises(ConfigError, match="privacy='some'"):
        with_regime(tiny_scenario, "some")


def test_the_engine_refuses_a_raw_upload_from_a_private_ue(tiny_scenario) -> None:
    """The last line of defence: a ready-made scheme object that asks for raw data anyway."""
    from testbed.learning.schemes import make_scheme

    engine = Engine(with_regime(tiny_scenario, "all"), make_scheme("centralized", 1.0))
    with pytest.raises(LearningError, match="may not leave them"):
        engine.run(1)


@pytest.mark.usefixtures("one_torch_thread")
def test_compare_tables_the_privacy_regime_beside_the_permissive_one(tmp_path, capsys) -> None:
    """Centralized runs only where its uploads are allowed and says what it uploaded; elsewhere it is listed as
    not allowed with the reason, never dropped. Fails on the old code (no --privacy, no not_allowed)."""
    args = ["compare", "--dataset", "digits", "--rounds", "1", "--jobs", "1", "--no-plots", "--out", str(tmp_path),
            "--schemes", "fedavg_all", "centralized", "--privacy", "all", "none"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["regimes"]
    assert list(out["all"]["schemes"]) == ["fedavg_all"] and "keep theirs" in out["all"]["not_allowed"]["centralized"]
    assert out["all"]["regime"]["raw_kept_on"] == [f"ue{i}" for i in range(10)]
    sent = out["none"]["schemes"]["centralized"]["uploaded"]
    assert len(sent["raw"]) == 10 and sent["raw_samples"] > 0 and out["none"]["not_allowed"] == {}
    assert (tmp_path / "all" / "summary.json").exists() and (tmp_path / "none" / "centralized").is_dir()
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "not allowed: needs the raw samples of every UE" in text and "raw 10/10 UEs" in text
    assert main(["train", "--dataset", "digits", "--rounds", "1", "--scheme", "centralized", "--privacy", "all",
                 "--out", str(tmp_path / "t")]) == 2  # fmt: skip
    assert "scheme centralized is not allowed" in capsys.readouterr().err
    only_raw = [*args[:-5], "centralized", "--privacy", "all"]
    assert main(only_raw) == 2
    assert "none of the schemes may run" in capsys.readouterr().err


@pytest.mark.usefixtures("one_torch_thread")
def test_centralized_training_is_charged_on_the_bs_board() -> None:
    """The BS trains for every raw UE on its own clock: a Pi Zero 2 W as BS lengthens each centralized round by its
    extra seconds for 10 UEs x 20 steps x 32 samples, up to where the next downlink slot falls (one TDMA cycle)."""
    steps = {**TINY_OVERRIDES["training"], "local_steps": 20, "batch_size": 32}
    fast, slow = (load_scenario(overrides={**TINY_OVERRIDES, "training": steps, "clock": {"bs_board": b}})
                  for b in ("laptop", "pi_zero_2"))  # fmt: skip
    fast_run, slow_run = Engine(fast, "centralized").run(2), Engine(slow, "centralized").run(2)
    codec = Engine(fast, "fedavg_all").codec_cfg
    extra_s = 6400 * (slow.round_config(codec).clock.bs_compute_s(1) - fast.round_config(codec).clock.bs_compute_s(1))
    cycle_s = fast.link.tdma_cycle_samples / fast.link.sample_rate_hz
    assert extra_s > 2 * cycle_s
    assert slow_run[1]["round_time_s"] - fast_run[1]["round_time_s"] == pytest.approx(extra_s, abs=cycle_s)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_streaming_run_resumes_with_the_samples_it_held(tmp_path, tiny_scenario) -> None:
    streaming = with_regime(tiny_scenario, "none", 20)
    straight = Engine(streaming, "hfcl", tmp_path / "a").run(3)
    Engine(streaming, "hfcl", tmp_path / "b").run(2)
    assert Engine(streaming, "hfcl", tmp_path / "b").run(3, resume=True) == straight
