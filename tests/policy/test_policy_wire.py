import math

import pytest

from testbed.control import protocol
from testbed.errors import PolicyError
from testbed.policy.capability import CapabilityReport
from testbed.policy.cpufreq import FrequencyTable
from testbed.policy.profiles import default_profiles
from testbed.policy.wire import report_from_wire, report_to_wire


def _report(table=None, **overrides):
    pi4 = default_profiles().get("pi_4")
    fields = dict(
        ue_id="ue4", samples_per_s=2500.0, cpu_freq_hz=1.5e9, frequency_table=table or pi4.frequency_table,
        available_memory_bytes=2**31, energy_budget_j=60.0, kappa_j_per_cycle_hz2=1.1e-27, min_tx_power_dbm=-82.75,
        max_tx_power_dbm=7.0,
    )  # fmt: skip
    fields.update(overrides)
    return CapabilityReport(**fields)


@pytest.mark.parametrize("table", [None, FrequencyTable(800e6, 3000e6)])
def test_a_report_survives_the_wire_round_trip(table):
    report = _report(table)
    msg = report_to_wire(report, num_local_samples=400)
    assert msg.cpu_freq_step_hz == (0.0 if table else 100e6) and msg.num_local_samples == 400
    envelope = protocol.Envelope(protocol.PROTOCOL_VERSION, "ue4", 1, 0, 0, 0.0, msg)
    decoded = protocol.decode(protocol.encode(envelope)).body  # over the real wire codec with its bounds
    back = report_from_wire("ue4", decoded)
    assert back.frequency_table == report.frequency_table
    assert back.samples_per_s_at(1.5e9) == pytest.approx(report.samples_per_s_at(1.5e9))
    assert back.cycles_per_sample == pytest.approx(report.cycles_per_sample)
    # the whole report crosses: nothing is taken from a board table at the BS
    assert (back.energy_budget_j, back.max_tx_power_dbm, back.min_tx_power_dbm) == (60.0, 7.0, -82.75)
    assert (back.kappa_j_per_cycle_hz2, back.available_memory_bytes) == (1.1e-27, 2**31)


def test_a_poisoned_report_never_leaves_the_ue():
    with pytest.raises(PolicyError):
        report_to_wire(_report(samples_per_s=math.nan), 10)


def test_uneven_steps_are_refused_not_approximated():
    table = FrequencyTable(600e6, 1500e6, (600e6, 700e6, 1000e6, 1500e6))
    with pytest.raises(PolicyError, match="evenly spaced"):
        report_to_wire(_report(table), 10)


def test_bad_wire_reports_are_refused():
    msg = report_to_wire(_report(), 10)
    for bad in (
        protocol.CapabilityReport(**{**_fields(msg), "cycles_per_sample": 0.0}),
        protocol.CapabilityReport(**{**_fields(msg), "cpu_freq_step_hz": 70e6}),  # 900 MHz is not 70 MHz steps
    ):
        with pytest.raises(PolicyError):
            report_from_wire("ue4", bad)


def _fields(msg):
    return {f: getattr(msg, f) for f in msg.__struct_fields__}
