import math

import pytest

from testbed.errors import PolicyError
from testbed.phy.layout import analog_burst_num_samples, burst_num_samples
from testbed.phy.mcs import get_mcs
from testbed.phy.numerology import PhyConfig
from testbed.policy.link_budget import (
    ChannelReport,
    analog_airtime_s,
    digital_airtime_s,
    highest_mcs,
    mcs_power_options,
)


def test_snr_moves_db_for_db_with_tx_power():
    ch = ChannelReport("u", 10.0, 0.0)
    assert ch.snr_db_at(7.0) == 17.0
    assert ch.power_for_snr_dbm(12.6) == pytest.approx(2.6)


def test_highest_mcs_respects_reference_snr_plus_margin():
    ch = ChannelReport("u", 13.6, 0.0)
    assert highest_mcs(ch, 0.0, margin_db=1.0).name == "16qam-3/4"  # needs 12.6 + 1 = 13.6
    assert highest_mcs(ch, -0.01, margin_db=1.0).name == "16qam-1/2"
    assert highest_mcs(ch, -20.0, margin_db=1.0) is None


def test_each_mcs_gets_the_least_power_reaching_it_within_the_limits():
    ch = ChannelReport("u", 10.0, 0.0)
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
                                            (10.0, 0.0, 3.0)])  # fmt: skip
def test_implausible_channel_reports_are_refused(snr, power, gain):
    with pytest.raises(PolicyError):
        ChannelReport("u", snr, power, gain).validate()
