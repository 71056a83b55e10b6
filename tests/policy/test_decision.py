import dataclasses
import math

import pytest

from testbed.errors import PolicyError
from testbed.link.messages import ChannelReport
from testbed.policy.allocation import DigitalUpload, RoundWork
from testbed.policy.capability import CapabilityReport
from testbed.policy.decision import FirstInformation, UeChoice, choose_mode
from testbed.policy.profiles import default_profiles

WORK = RoundWork(160, DigitalUpload(127_016))


def _report(profile="pi_4", samples_per_s=2500.0, budget=None, ue_id="u"):
    p = default_profiles().get(profile)
    return CapabilityReport(
        ue_id=ue_id,
        samples_per_s=samples_per_s,
        cpu_freq_hz=p.cpu_freq_max_hz,
        frequency_table=p.frequency_table,
        available_memory_bytes=p.memory_bytes,
        energy_budget_j=p.energy_budget_j if budget is None else budget,
        kappa_j_per_cycle_hz2=p.kappa_j_per_cycle_hz2,
        min_tx_power_dbm=p.min_tx_power_dbm,
        max_tx_power_dbm=p.max_tx_power_dbm,
    )


INFO = FirstInformation(capability_threshold_samples_per_s=1000.0, deadline_s=2.0, distributed_work=WORK)
GOOD = ChannelReport.assumed(20.0, 0.0)


def test_a_strong_ue_trains_locally_at_its_least_energy_point():
    d = choose_mode(INFO, _report(), GOOD)
    assert d.choice is UeChoice.DISTRIBUTED and d.allocation is not None
    assert d.allocation.round_time_s <= INFO.deadline_s and "meets" in d.reason


def test_capability_below_the_threshold_goes_centralized():
    d = choose_mode(INFO, _report("pi_3", 700.0), GOOD)
    assert d.choice is UeChoice.CENTRALIZED and "below the threshold" in d.reason


def test_a_ue_measured_at_a_low_frequency_is_judged_at_its_best():
    # 500 samples/s at 600 MHz is 1250 samples/s at 1500 MHz: above the threshold.
    r = dataclasses.replace(_report(samples_per_s=500.0), cpu_freq_hz=600e6)
    assert choose_mode(INFO, r, GOOD).choice is UeChoice.DISTRIBUTED


def test_missing_the_deadline_even_at_best_goes_centralized():
    info = FirstInformation(1000.0, 0.05, WORK)
    d = choose_mode(info, _report(), GOOD)
    assert d.choice is UeChoice.CENTRALIZED and "over deadline" in d.reason


def test_a_channel_too_poor_to_upload_goes_centralized():
    d = choose_mode(INFO, _report(), ChannelReport.assumed(-20.0, 0.0))
    assert d.choice is UeChoice.CENTRALIZED and "cannot upload" in d.reason


def test_an_energy_budget_too_small_goes_centralized():
    d = choose_mode(INFO, _report(budget=1e-4), GOOD)
    assert d.choice is UeChoice.CENTRALIZED and "energy budget" in d.reason


@pytest.mark.parametrize("bad", [-1.0, 0.0, math.nan, 1e15])
def test_a_poisoned_own_report_falls_back_to_centralized_without_raising(bad):
    d = choose_mode(INFO, _report(samples_per_s=bad), GOOD)
    assert d.choice is UeChoice.CENTRALIZED and "invalid own report" in d.reason


@pytest.mark.parametrize("threshold,deadline", [(0.0, 1.0), (1.0, -1.0), (math.nan, 1.0), (1.0, math.inf)])
def test_bad_first_information_is_refused(threshold, deadline):
    with pytest.raises(PolicyError):
        FirstInformation(threshold, deadline, WORK)
