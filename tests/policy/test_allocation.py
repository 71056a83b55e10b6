import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import make_ue

from testbed.errors import PolicyError
from testbed.learning.cost import compute_energy_j
from testbed.policy.allocation import (
    AllocationConfig,
    AnalogUpload,
    DigitalUpload,
    RoundWork,
    allocate_round,
    allocate_ue,
    frequency_for_compute_time,
    max_performance,
    shortest_deadline_s,
)
from testbed.policy.profiles import default_profiles

CFG = AllocationConfig()
WORK = RoundWork(160, DigitalUpload(127_016))


def test_frequency_closed_form_and_snapping_up():
    table = default_profiles().get("pi_4").frequency_table
    # 1.05e9 cycles in 1 s needs 1050 MHz: the board runs 1100 MHz; the continuous model 1050 MHz.
    assert frequency_for_compute_time(1.05e9, 1.0, table, snap=True) == 1100e6
    assert frequency_for_compute_time(1.05e9, 1.0, table, snap=False) == pytest.approx(1050e6)
    assert frequency_for_compute_time(0.1e9, 1.0, table, snap=True) == 600e6
    assert frequency_for_compute_time(0.0, 0.0, table, snap=True) == 600e6  # nothing to compute
    with pytest.raises(PolicyError):
        frequency_for_compute_time(2e9, 1.0, table, snap=True)


def test_allocation_is_exhaustively_optimal_over_the_feasible_grid():
    """Brute force over every cpufreq step and every 0.25 dB of power agrees with the closed forms."""
    ue = make_ue(snr_db=12.0)
    deadline = 1.3 * max_performance(ue, WORK, CFG).round_time_s
    best = allocate_ue(ue, WORK, deadline, CFG)
    from testbed.policy.allocation import evaluate

    brute, air = math.inf, CFG.airtime
    for f in ue.frequency_table.steps_hz:
        for quarter_db in range(-40, 29):
            p = quarter_db / 4
            snr = ue.channel.snr_db_at(p)
            if not air.mcs.usable(snr):
                continue
            sent = air.transfer(127_016, air.mcs.choose(snr), snr)
            point = evaluate(ue, WORK, f, p, sent.mcs, sent.on_air_s, sent.elapsed_s)
            if point.round_time_s <= deadline:
                brute = min(brute, point.energy_j)
    assert best.energy_j <= brute + 1e-12
    assert best.round_time_s <= deadline


@settings(max_examples=60, deadline=None)
@given(
    profile=st.sampled_from(["pi_zero_2", "pi_3", "pi_4", "pi_5", "laptop"]),
    snr_db=st.floats(2.0, 30.0),
    samples_per_s=st.floats(200.0, 20_000.0),
    slack=st.floats(1.0, 4.0),
    payload=st.integers(0, 400_000),
    samples=st.integers(1, 2000),
)
def test_allocation_meets_the_deadline_within_limits_and_never_costs_more_than_max_performance(
    profile, snr_db, samples_per_s, slack, payload, samples
):
    ue = make_ue(profile=profile, snr_db=snr_db, samples_per_s=samples_per_s, energy_budget_j=1e6)
    work = RoundWork(samples, DigitalUpload(payload))
    try:
        base = max_performance(ue, work, CFG)
    except PolicyError:
        return  # the link cannot carry a digital upload at all: nothing to compare
    a = allocate_ue(ue, work, slack * base.round_time_s, CFG)
    assert a.round_time_s <= slack * base.round_time_s * (1 + 1e-9)
    assert a.energy_j <= base.energy_j * (1 + 1e-9)
    assert ue.frequency_table.min_hz <= a.cpu_freq_hz <= ue.frequency_table.max_hz
    assert a.cpu_freq_hz in ue.frequency_table.steps_hz or ue.frequency_table.continuous
    assert ue.min_tx_power_dbm <= a.tx_power_dbm <= ue.max_tx_power_dbm


def test_a_looser_deadline_never_costs_more_and_continuous_never_more_than_snapped():
    ue = make_ue(snr_db=18.0)
    base = max_performance(ue, WORK, CFG).round_time_s
    energies = [allocate_ue(ue, WORK, k * base, CFG).energy_j for k in (1.0, 1.2, 1.5, 2.0, 4.0)]
    assert energies == sorted(energies, reverse=True)
    continuous = AllocationConfig(snap_to_steps=False)
    assert allocate_ue(ue, WORK, 1.2 * base, continuous).energy_j <= energies[1]


def test_compute_energy_comes_from_the_shared_cost_model():
    ue = make_ue()
    a = allocate_ue(ue, WORK, 10.0, CFG)
    assert a.compute_energy_j == compute_energy_j(160, ue.cycles_per_sample, a.cpu_freq_hz, ue.kappa_j_per_cycle_hz2)


def test_analog_upload_uses_the_least_power_reaching_its_snr():
    ue = make_ue(snr_db=0.0)  # 0 dB at 0 dBm
    work = RoundWork(160, AnalogUpload(2560, min_snr_db=5.0), cycle_fraction=0.25)
    a = allocate_ue(ue, work, 5.0, CFG)
    assert a.tx_power_dbm == pytest.approx(5.0) and a.mcs is None
    with pytest.raises(PolicyError, match="cannot carry"):
        allocate_ue(make_ue(snr_db=-10.0), work, 5.0, CFG)  # would need 15 dBm


def test_infeasible_deadline_says_how_long_the_ue_needs():
    ue = make_ue()
    fastest = max_performance(ue, WORK, CFG).round_time_s
    with pytest.raises(PolicyError, match="needs"):
        allocate_ue(ue, WORK, 0.5 * fastest, CFG)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(PolicyError):
            allocate_ue(ue, WORK, bad, CFG)


def test_energy_budget_is_enforced():
    ue = make_ue(energy_budget_j=1e-3)
    with pytest.raises(PolicyError, match="energy budget"):
        allocate_ue(ue, WORK, 10.0, CFG)


def test_round_allocation_names_every_failing_ue():
    good, bad = make_ue("good"), make_ue("bad", energy_budget_j=1e-3)
    with pytest.raises(PolicyError, match="1 UE.*'bad'"):
        allocate_round([(good, WORK), (bad, WORK)], 10.0, CFG)


def test_shortest_deadline_is_tight():
    ues = [(make_ue("a", snr_db=6.0), WORK), (make_ue("b", "pi_3", 20.0, 700.0), WORK)]
    t = shortest_deadline_s(ues, CFG)
    allocate_round(ues, t, CFG)
    with pytest.raises(PolicyError):
        allocate_round(ues, 0.99 * t, CFG)


def test_shortest_deadline_finds_a_budget_bound_deadline():
    # The budget forbids the max-performance point; a longer deadline at lower frequency fits it.
    ue = make_ue(samples_per_s=100.0)
    base = max_performance(ue, WORK, CFG)
    tight = make_ue(samples_per_s=100.0, energy_budget_j=0.5 * base.energy_j)
    t = shortest_deadline_s([(tight, WORK)], CFG)
    assert t > base.round_time_s
    assert allocate_ue(tight, WORK, t, CFG).energy_j <= 0.5 * base.energy_j


def test_no_deadline_at_all_when_the_budget_is_below_the_frugal_point():
    with pytest.raises(PolicyError, match="no deadline is feasible"):
        shortest_deadline_s([(make_ue(energy_budget_j=1e-6), WORK)], CFG)


@pytest.mark.parametrize(
    "work",
    [
        lambda: RoundWork(-1, DigitalUpload(10)),
        lambda: RoundWork(10, DigitalUpload(-10)),
        lambda: RoundWork(10, AnalogUpload(10, math.nan)),
        lambda: RoundWork(10, DigitalUpload(10), cycle_fraction=0.0),
    ],
)
def test_bad_work_is_refused(work):
    with pytest.raises(PolicyError):
        work()


def test_each_mcs_gets_the_least_power_reaching_its_threshold_within_the_limits():
    from policy_helpers import make_ue

    from testbed.policy.allocation import _upload_options

    ue = make_ue(snr_db=10.0)  # measured at 0 dBm; the radio spans min_tx_power_dbm..7 dBm
    air = CFG.airtime
    options = {sent.mcs: p for p, sent in _upload_options(ue, WORK, CFG)}
    for mcs in air.mcs.candidates:
        need = ue.channel.power_for_snr_dbm(air.mcs.required_snr_db(mcs))
        assert (mcs in options) == (need <= ue.max_tx_power_dbm)
        if mcs in options:
            assert options[mcs] == pytest.approx(max(need, ue.min_tx_power_dbm))
    assert "16qam-1/2" in options and "64qam-3/4" not in options  # 9.67 + 3 dB: 2.7 dBm; 18.4 + 3 dB: 11.4 dBm
