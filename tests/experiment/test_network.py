"""The engine drives the node cores over the shared air: both media deliver the same bytes, TDMA keeps every
burst apart, more UEs make a longer round, and a medium that does not exist is refused."""

import msgspec
import pytest

from testbed.errors import ConfigError
from testbed.experiment.engine import Engine
from testbed.experiment.scenario import load_scenario
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
