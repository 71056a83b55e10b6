import math

import msgspec
import pytest

from testbed.errors import LinkError, PolicyError
from testbed.link.messages import ChannelReport
from testbed.phy.layout import analog_burst_num_samples, burst_num_samples
from testbed.phy.mcs import get_mcs
from testbed.phy.numerology import PhyConfig
from testbed.policy.link_budget import (
    analog_airtime_s,
    digital_airtime_s,
    highest_mcs,
    mcs_power_options,
    validate_channel,
)


def test_snr_moves_db_for_db_with_tx_power():
    ch = ChannelReport.assumed(10.0, 0.0)
    assert ch.snr_db_at(7.0) == 17.0
    assert ch.power_for_snr_dbm(12.6) == pytest.approx(2.6)


def test_highest_mcs_respects_reference_snr_plus_margin():
    ch = ChannelReport.assumed(13.6, 0.0)
    assert highest_mcs(ch, 0.0, margin_db=1.0).name == "16qam-3/4"  # needs 12.6 + 1 = 13.6
    assert highest_mcs(ch, -0.01, margin_db=1.0).name == "16qam-1/2"
    assert highest_mcs(ch, -20.0, margin_db=1.0) is None


def test_each_mcs_gets_the_least_power_reaching_it_within_the_limits():
    ch = ChannelReport.assumed(10.0, 0.0)
    options = dict((m.name, p) for m, p in mcs_power_options(ch, 1.0, min_tx_power_dbm=-5.0, max_tx_power_dbm=7.0))
    assert options["bpsk-1/2"] == -5.0  # 0.65 + 1 - 10 = -8.35 dBm, raised to the radio's minimum
    assert options["16qam-3/4"] == pytest.approx(3.6)
    assert "64qam-2/3" not in options  # would need 8 dBm > 7 dBm


def test_airtime_is_the_exact_burst_length():
    cfg = PhyConfig()
    mcs = get_mcs("qpsk-1/2")
    assert digital_airtime_s(cfg, 1000, mcs) == burst_num_samples(cfg, 1000, mcs) / cfg.sample_rate_hz
    n = 2 * cfg.max_payload_bytes + 5  # two full frames and a 5-byte one
    expected = 2 * burst_num_samples(cfg, cfg.max_payload_bytes, mcs) + burst_num_samples(cfg, 5, mcs)
    assert digital_airtime_s(cfg, n, mcs) == expected / cfg.sample_rate_hz
    assert analog_airtime_s(cfg, 2560) == analog_burst_num_samples(cfg, 2560) / cfg.sample_rate_hz
    assert digital_airtime_s(cfg, 0, mcs) == 0.0 == analog_airtime_s(cfg, 0)


@pytest.mark.parametrize("snr,power,gain", [(math.nan, 0.0, None), (10.0, math.inf, None), (99.0, 0.0, None),
                                            (10.0, 0.0, math.nan)])  # fmt: skip
def test_implausible_channel_reports_are_refused(snr, power, gain):
    with pytest.raises(PolicyError):
        validate_channel("u", ChannelReport.assumed(snr, power, mean_gain_db=gain))


def test_the_policy_reads_the_link_layers_measured_report_plus_its_tx_power():
    measured = ChannelReport(3, 0, 20, 13.6, -71.0, 850.0, 0.95, [1.0], [0.0])  # what the BS's receiver heard
    with pytest.raises(PolicyError, match="tx_power_dbm=None"):
        validate_channel("ue-3", measured)  # the power it was sent at is needed to move it with power
    with pytest.raises(LinkError, match="no tx_power_dbm"):
        measured.snr_db_at(0.0)
    at_power = msgspec.structs.replace(measured, tx_power_dbm=0.0)  # the BS knows the power it ordered
    validate_channel("ue-3", at_power)
    assert highest_mcs(at_power, 0.0, margin_db=1.0).name == "16qam-3/4"
