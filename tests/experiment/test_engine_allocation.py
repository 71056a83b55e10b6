"""The allocation applied in the engine. TX power: a UE told less power than its link's reference is heard that
much lower on both media. Energy: no UE spends more than ASSIGN's per-round budget; a UE whose full round
would exceed it trains fewer local steps (and its contribution weighs less) or declines the round, says so
in UPLINK_DONE, and the BS records it and counts a declined UE as late without losing the round.

On the old code ASSIGN's power was only logged and the budget only compared after the fact: these tests fail
there (the same SNR at any power; every UE does its full work, spends over its budget, and the records carry
no ``ue_work``)."""

import dataclasses

import pytest

from testbed.experiment import engine as engine_module
from testbed.experiment.engine import Engine
from testbed.node.assigners import FixedAssigner, Orders
from testbed.policy.budget import priced_frames

SCHEMES = ["fedavg_all", "centralized", "hfcl", "hybrid", "policy"]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("scheme", SCHEMES)
def test_no_ue_spends_more_than_its_budget_in_any_round(tiny_scenario, scheme) -> None:
    eng = Engine(tiny_scenario, scheme)
    eng.run(3)
    for record in eng.records:
        budgets = record["ue_energy_budget_j"]
        assert record["ue_energy_j"] and set(record["ue_energy_j"]) <= set(budgets)
        for ue, spent_j in record["ue_energy_j"].items():
            assert 0.0 <= spent_j <= budgets[ue], (scheme, record["round"], ue)
        assert set(record["ue_work"].values()) == {"full"}  # the shipped budgets never bind
        assert all(p == tiny_scenario.ues[0].tx_power_dbm for p in record["ue_tx_power_dbm"].values())


def _first_round(
    scenario, monkeypatch, budgets: dict[str, float], powers: dict[str, float] | None = None, medium: str = "model"
) -> dict:
    """Round 1 of the hybrid scheme with the per-round budgets and TX powers of some UEs replaced."""
    real = engine_module.assigner_for
    powers = powers or {}

    def tight(scheme, profiles, runner):  # noqa: ANN001, ANN202 - wraps assigner_for (a fixed scheme's)
        inner = real(scheme, profiles, runner)

        def orders(views) -> dict[str, Orders]:  # noqa: ANN001
            out = inner.orders(views, None)
            return {ue: dataclasses.replace(o, energy_budget_j=budgets.get(ue, o.energy_budget_j),
                                            tx_power_dbm=powers.get(ue, o.tx_power_dbm))
                    for ue, o in out.items()}  # fmt: skip

        return FixedAssigner(orders)

    monkeypatch.setattr(engine_module, "assigner_for", tight)
    eng = Engine(scenario, "hybrid", medium=medium)
    eng.run(1)
    return eng.records[0]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("medium", ["model", "phy"])
def test_a_ue_told_10_db_less_power_is_heard_10_db_lower(tiny_scenario, monkeypatch, medium) -> None:
    reference = {ue.name: ue.tx_power_dbm for ue in tiny_scenario.ues}
    free = _first_round(tiny_scenario, monkeypatch, {}, medium=medium)
    quiet = _first_round(tiny_scenario, monkeypatch, {}, {"ue9": reference["ue9"] - 10.0}, medium=medium)
    assert quiet["ue_tx_power_dbm"]["ue9"] == reference["ue9"] - 10.0
    assert quiet["uplink_snr_db"]["ue9"] - free["uplink_snr_db"]["ue9"] == pytest.approx(-10.0, abs=1.0)
    assert quiet["ue_radio_energy_j"]["ue9"] == pytest.approx(0.1 * free["ue_radio_energy_j"]["ue9"], rel=0.01)
    assert quiet["uplink_snr_db"]["ue8"] == pytest.approx(free["uplink_snr_db"]["ue8"], abs=0.5)  # others as before


@pytest.mark.usefixtures("one_torch_thread")
def test_a_tight_budget_reduces_the_work_or_declines_the_round(tiny_scenario, monkeypatch) -> None:
    free = _first_round(tiny_scenario, monkeypatch, {})
    assert free["modes"]["ue0"] == "centralized_decoder" and free["modes"]["ue4"] == "distributed"
    full_samples = free["ue_trained_samples"]["ue0"]
    # ue0's symbols cross as analog frames beside a one-frame digital index, which dominates its radio energy and
    # is priced with the repair reserve: a budget of that price plus 3/4 of its compute leaves 1 of its 2 steps
    radio_j = free["ue_radio_energy_j"]["ue0"]
    compute_j = free["ue_energy_j"]["ue0"] - radio_j
    budgets = {"ue0": priced_frames(1) * radio_j + 0.75 * compute_j, "ue4": 0.5 * free["ue_radio_energy_j"]["ue4"]}
    tight = _first_round(tiny_scenario, monkeypatch, budgets)

    assert tight["ue_work"]["ue0"] == "reduced"  # fewer symbol batches: less compute and fewer analog values
    assert 0 < tight["ue_trained_samples"]["ue0"] < full_samples
    assert tight["ue_energy_j"]["ue0"] <= budgets["ue0"]
    assert "ue0" in tight["done"] and tight["uploads"]["ue0"]["bytes"] < free["uploads"]["ue0"]["bytes"]

    assert tight["ue_work"]["ue4"] == "declined"  # its update alone costs more radio energy than the budget
    assert tight["ue_energy_j"]["ue4"] == 0.0 and tight["ue_trained_samples"]["ue4"] == 0
    assert "ue4" not in tight["done"] and tight["training"]["late"] == ["ue4"]
    assert tight["outcome"] == "partial" and tight["training"]["model_finite"]  # the round still counts

    for ue, spent_j in tight["ue_energy_j"].items():
        assert spent_j <= tight["ue_energy_budget_j"][ue]
    assert {ue: w for ue, w in tight["ue_work"].items() if ue not in budgets} == {
        ue: "full" for ue in free["ue_work"] if ue not in budgets
    }


@pytest.mark.usefixtures("one_torch_thread")
def test_a_ue_whose_repairs_use_up_its_budget_stops_sending_and_says_so(tiny_scenario, monkeypatch) -> None:
    """ue0's budget covers its planned round (with the repair reserve) but its uplink loses 60% of the frames:
    it stops once the frames its budget pays for are sent, reports "declined" with what it spent, and the
    round goes on without it (on the old code it kept repairing: the spend was unbounded)."""
    free = _first_round(tiny_scenario, monkeypatch, {})
    real_link = engine_module.build_link

    def lossy(*args):  # noqa: ANN002, ANN202 - wraps build_link
        link = real_link(*args)
        link.loss = {(1, 0): 0.6}  # ue0 (node 1) -> BS
        return link

    monkeypatch.setattr(engine_module, "build_link", lossy)
    budget = 1.3 * free["ue_energy_j"]["ue0"]
    spent = _first_round(tiny_scenario, monkeypatch, {"ue0": budget})
    assert spent["ue_work"]["ue0"] == "declined" and "ue0" not in spent["done"]
    assert free["ue_energy_j"]["ue0"] <= spent["ue_energy_j"]["ue0"] <= budget  # it did send, within the budget
    assert "ue0" in spent["training"]["late"] and spent["outcome"] == "partial"
