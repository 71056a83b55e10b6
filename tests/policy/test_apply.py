import logging
import math

import pytest
from policy_helpers import make_ue

from testbed.errors import PolicyError
from testbed.policy.allocation import AllocationConfig, DigitalUpload, RoundWork, allocate_ue
from testbed.policy.apply import apply_allocation, pluto_calibration, record_round
from testbed.policy.cpufreq import SimulatedCpuFreq, SysfsCpuFreq

WORK = RoundWork(160, DigitalUpload(127_016))


def _pluto_calibration(tx_power_dbm: float) -> float:
    """A linear calibration: 0 dB hardware gain gives 7 dBm."""
    return tx_power_dbm - 7.0


def test_apply_sets_gain_and_frequency_on_a_board(pi4_tree):
    ue = make_ue(snr_db=15.0)
    plan = allocate_ue(ue, WORK, 1.0, AllocationConfig(snap_to_steps=False))  # continuous plan on a stepped CPU
    gains = []
    applied = apply_allocation(plan, _pluto_calibration, gains.append, SysfsCpuFreq(pi4_tree))
    assert gains == [pytest.approx(plan.tx_power_dbm - 7.0)]
    assert applied.cpu_freq_hz >= plan.cpu_freq_hz and applied.cpu_freq_hz % 100e6 == 0
    text = (pi4_tree / "cpu1" / "cpufreq" / "scaling_max_freq").read_text().strip()
    assert int(text) * 1e3 == applied.cpu_freq_hz


@pytest.mark.parametrize("gain", [5.0, -120.0, math.nan])
def test_a_calibration_outside_the_radio_range_changes_nothing(gain):
    ue = make_ue()
    plan = allocate_ue(ue, WORK, 1.0, AllocationConfig())
    cpu = SimulatedCpuFreq(ue.frequency_table)
    gains = []
    with pytest.raises(PolicyError, match="calibration"):
        apply_allocation(plan, lambda p: gain, gains.append, cpu)
    assert gains == [] and cpu.current_frequency_hz() == ue.frequency_table.max_hz


def test_the_round_is_charged_at_what_was_actually_set(caplog):
    ue = make_ue(energy_budget_j=0.1)
    plan = allocate_ue(ue, WORK, 1.0, AllocationConfig())
    applied = apply_allocation(plan, _pluto_calibration, lambda g: None, SimulatedCpuFreq(ue.frequency_table))
    record = record_round(3, applied, ue, WORK, plan.airtime_s)
    assert record.energy_j == pytest.approx(plan.energy_j) and record.within_budget
    with caplog.at_level(logging.WARNING, logger="testbed.policy.apply"):
        retried = record_round(4, applied, ue, WORK, 1e4 * plan.airtime_s)  # many repairs on air
    assert not retried.within_budget and "over its budget" in caplog.text


def test_the_radio_layers_calibration_file_maps_power_to_gain():
    from testbed.radio.calibration import BoardCal, CalPoint, TxCalibration

    cal = TxCalibration([BoardCal("sn1", [CalPoint(915e6, 6.0), CalPoint(2.4e9, 4.0)])])
    assert pluto_calibration(cal, "sn1", 2.4e9)(-10.0) == pytest.approx(-14.0)
    assert pluto_calibration(cal, "sn1", 1.6575e9)(0.0) == pytest.approx(-5.0)  # midway: 5 dBm at 0 dB
    ue = make_ue()
    plan = allocate_ue(ue, WORK, 1.0, AllocationConfig())
    gains = []
    apply_allocation(plan, pluto_calibration(cal, "sn1", 2.4e9), gains.append, SimulatedCpuFreq(ue.frequency_table))
    assert gains == [pytest.approx(plan.tx_power_dbm - 4.0)]
