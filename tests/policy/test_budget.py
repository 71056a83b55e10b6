"""The reduced-work rule: the most work whose predicted energy fits the round's budget, else decline."""

import pytest

from testbed.errors import PolicyError
from testbed.policy.budget import REPAIR_RESERVE, WorkOption, fit_budget, priced_frames

# five local steps of 32 samples, each step's symbols 4 kB more upload (as LearningUe.work_options lists them)
OPTIONS = [WorkOption(k, 32 * k, 0.5, 4000 * k) for k in range(5, 0, -1)]


def _energy(option: WorkOption) -> float:
    """0.01 J per sample of compute plus 1e-4 J per uploaded byte."""
    return 0.01 * option.samples * option.cycle_fraction + 1e-4 * option.upload_bytes


def test_full_work_when_it_fits() -> None:
    plan = fit_budget(OPTIONS, _energy, budget_j=10.0)
    assert plan.action == "full" and plan.option == OPTIONS[0] and plan.energy_j == pytest.approx(0.8 + 2.0)


def test_fewer_local_steps_when_the_full_round_does_not_fit() -> None:
    plan = fit_budget(OPTIONS, _energy, budget_j=1.2)  # 3 steps cost 0.48 + 1.2 J, 2 steps 0.32 + 0.8 J
    assert plan.action == "reduced" and plan.option is not None and plan.option.local_steps == 2
    assert plan.energy_j == pytest.approx(1.12) and plan.energy_j <= 1.2


def test_exactly_the_budget_is_within_it() -> None:
    assert fit_budget(OPTIONS, _energy, budget_j=_energy(OPTIONS[1])).option == OPTIONS[1]


def test_declines_when_not_even_the_least_work_fits() -> None:
    plan = fit_budget(OPTIONS, _energy, budget_j=0.5)  # one step: 0.16 + 0.4 J
    assert plan.action == "declined" and plan.option is None and plan.energy_j == pytest.approx(0.56)
    raw = [WorkOption(0, 0, 1.0, 300_000)]  # a raw upload has one way only: all of it or nothing
    assert fit_budget(raw, _energy, budget_j=29.0).action == "declined"
    assert fit_budget(raw, _energy, budget_j=30.0).action == "full"


def test_bad_input_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="at least one"):
        fit_budget([], _energy, 1.0)
    with pytest.raises(PolicyError, match="finite and >= 0"):
        fit_budget(OPTIONS, _energy, float("nan"))


def test_uploads_are_priced_with_the_repair_reserve() -> None:
    assert priced_frames(8) == pytest.approx(8 * (1 + REPAIR_RESERVE)) and priced_frames(0) == 0.0
