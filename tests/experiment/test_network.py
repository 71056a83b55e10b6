"""The engine drives the node cores over the shared air: both media deliver the same bytes, TDMA keeps every
burst apart, more UEs make a longer round, and a medium that does not exist is refused."""

import msgspec
import numpy as np
import pytest

from testbed.errors import ConfigError
from testbed.experiment.engine import Engine
from testbed.experiment.media import build_link
from testbed.experiment.scenario import DEFAULT_SCENARIO, load_scenario
from testbed.link.framelink import TxFrame
from tests.experiment.conftest import TINY_OVERRIDES


@pytest.mark.usefixtures("one_torch_thread")
def test_model_and_phy_media_train_the_same_model(tiny_scenario) -> None:
    """Every upload of round 0 crosses both media intact, so the joint update, hence the accuracy, is the same;
    on phy every frame was modulated and decoded by the real receiver."""
    model = Engine(tiny_scenario, "fedavg_all", medium="model")
    phy = Engine(tiny_scenario, "fedavg_all", medium="phy")
    a, b = model.run(1)[0], phy.run(1)[0]
    assert a["outcome"] == b["outcome"] == "complete" and not a["late"] and not b["late"]
    assert a["accuracy"] == b["accuracy"] and a["round_uplink_bits"] == b["round_uplink_bits"]
    assert type(phy.network.link).__name__ == "PhyFrameLink"
    for engine in (model, phy):
        assert engine.network.link.air_log.overlaps() == []  # every sender kept to its TDMA slot
        assert not engine.network.rejections  # no message out of its round or sequence


@pytest.mark.usefixtures("one_torch_thread")
def test_a_round_takes_longer_with_more_ues_on_the_shared_air() -> None:
    """Uplinks share one TDMA cycle: with 8 UEs each slot is a quarter of the one 2 UEs get, so the same upload
    takes more cycles (measured on the cores' own transfers, not charged by a formula)."""
    times = []
    for n in (2, 8):
        base = scenario = load_scenario(overrides=TINY_OVERRIDES)
        ues = [base.ues[i % len(base.ues)] for i in range(n)]
        scenario = msgspec.structs.replace(
            scenario, ues=[msgspec.structs.replace(u, name=f"u{i}") for i, u in enumerate(ues)]
        )
        times.append(Engine(scenario, "fedavg_all").run(1)[0]["round_time_s"])
    assert times[1] > times[0]


def test_an_unknown_medium_is_refused_with_the_choices(tiny_scenario) -> None:
    with pytest.raises(ConfigError, match=r"unknown medium 'air'; choose one of model, phy"):
        Engine(tiny_scenario, "fedavg_all", medium="air")


def test_both_media_give_a_selective_ue_the_same_mean_snr() -> None:
    """The phy medium scales the scenario's multipath draw as the model medium does (mean |H_k|^2 = 1), so the
    real receiver measures the UE's snr_db; unscaled, ue0's draw (5 dB) measured -1.3 dB and never decoded."""
    scenario = load_scenario(DEFAULT_SCENARIO.with_name("selective.toml"), overrides=TINY_OVERRIDES)
    profiles = scenario.profiles(scenario.codec_config(8, 10))
    frame = TxFrame(1, 0, bytes(100), "bpsk-1/2", stream_id=1)
    for medium in ("model", "phy"):
        link = build_link(medium, scenario, profiles, np.random.default_rng(5))
        (heard,) = link.exchange([frame], [0], 20_000).heard[0]
        assert abs(heard.snr_db - profiles[0].snr_db) < 1.0, (medium, heard.snr_db)


def test_the_scenario_chooses_the_medium_and_a_wrong_one_is_named(tmp_path) -> None:
    assert Engine(load_scenario(overrides={**TINY_OVERRIDES, "medium": {"kind": "phy"}}), "fedavg_all").medium == "phy"
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_SCENARIO.read_text().replace('kind = "model"', 'kind = "air"'))
    with pytest.raises(ConfigError, match=r"bad.toml.*medium.kind"):
        load_scenario(bad)


@pytest.mark.usefixtures("one_torch_thread")
def test_schemes_in_parallel_processes_give_the_same_figures(tiny_scenario) -> None:
    from testbed.experiment.compare import run_comparison

    scenario = load_scenario(overrides={**TINY_OVERRIDES, "run": {"rounds": 2}})
    one = run_comparison(scenario, ["fedavg_all", "hfcl"], None)
    two = run_comparison(scenario, ["fedavg_all", "hfcl"], None, jobs=2)
    assert one["histories"] == two["histories"] and list(two["histories"]) == ["fedavg_all", "hfcl"]
