"""The cost-aware grouping of weak UEs: raw data vs symbols priced over the horizon, with exact numbers."""

import math

import pytest

from testbed.errors import ConfigError, PolicyError
from testbed.link.airtime import Transfer
from testbed.link.messages import ChannelReport
from testbed.mode import Mode
from testbed.policy.capability import CapabilityReport
from testbed.policy.centralized_cost import CentralizedCost, centralized_cost
from testbed.policy.cpufreq import FrequencyTable
from testbed.policy.grouping import GroupingConfig, UeObservation, group_ues
from testbed.policy.work import WorkSizes


class LinearAirtime:
    """1 s per 10 kB of digital payload, 0.1 ms per analog symbol; refuses links below 0 dB (no MCS); waiting
    for slots doubles the elapsed time (the cost prices the bursts only)."""

    def broadcast(self, payload_bytes: int, worst_snr_db: float, channels=()) -> Transfer:
        return Transfer(2 * payload_bytes / 1e4, payload_bytes / 1e4, 0.0, 0, None)

    def upload(self, payload_bytes: int, snr_db: float, analog_symbols: int = 0, gain=None) -> Transfer:
        if snr_db < 0:
            raise ConfigError(f"no MCS at {snr_db} dB")
        on_air = payload_bytes / 1e4 + analog_symbols * 1e-4
        return Transfer(2 * on_air, on_air, 0.0, 0, None)


# 1,000 samples/s at 1 GHz -> 1e6 cycles per sample; lowest clock 0.5 GHz; 30 dBm = 1 W at maximum power.
REPORT = CapabilityReport("weak", 1000.0, 1e9, FrequencyTable(0.5e9, 1e9), 2**30, 100.0, 1e-27, 0.0, 30.0)
CHANNEL = ChannelReport.assumed(5.0, 30.0)
WORK = WorkSizes(
    samples_per_round=100, update_bytes=10_000, symbols_per_sample=10, raw_bytes_per_sample=100, encoder_fraction=0.25
)
# Raw: 1,000 samples x 100 B = 1e5 B -> 10 s at 1 W = 10 J. Symbols per round: 1,000 analog symbols (0.1 s) +
# 100 label bytes (0.01 s) at 1 W = 0.11 J, plus the encoder: 100 x 1e6 x 0.25 cycles x 1e-27 x (0.5e9)^2 =
# 6.25e-3 J; 0.11625 J per round, so the raw upload pays off from 10 / 0.11625 = 86.02 rounds.
PER_ROUND_J = 0.11 + 6.25e-3


def _cost(rounds, work=WORK, channel=CHANNEL, samples=1000):
    return centralized_cost(REPORT, channel, work, samples, rounds, LinearAirtime())


def _group(cost, **cfg):
    obs = UeObservation("weak", REPORT, CHANNEL, None, cost)
    (a,) = group_ues([obs], GroupingConfig("joint", 2000.0, **cfg))  # 1,000 samples/s < 2,000: weak
    return a


def test_both_options_are_priced_exactly():
    c = _cost(60)
    assert c.raw_airtime_s == pytest.approx(10.0) and c.raw_energy_j == pytest.approx(10.0)
    assert c.symbols_airtime_s_per_round == pytest.approx(0.11)
    assert c.symbols_energy_j_per_round == pytest.approx(PER_ROUND_J)
    assert c.symbols_energy_j == pytest.approx(60 * PER_ROUND_J) and c.symbols_airtime_s == pytest.approx(6.6)
    assert c.break_even_rounds == pytest.approx(10.0 / PER_ROUND_J)


def test_the_boundary_is_the_break_even_horizon():
    below, at = _group(_cost(86)), _group(_cost(87))  # 86 x 0.11625 = 9.9975 J < 10 J <= 87 x 0.11625
    assert below.mode is Mode.CENTRALIZED_DECODER and "raw data 10 s / 10 J > symbols" in below.reason
    assert at.mode is Mode.CENTRALIZED_FULL and "raw data 10 s / 10 J <= symbols 9.57 s / 10.11 J over 87" in at.reason


def test_equal_cost_goes_to_raw_data():
    equal = CentralizedCost(4, raw_airtime_s=2.0, raw_energy_j=1.0, symbols_airtime_s_per_round=0.1,
                            symbols_energy_j_per_round=0.25)  # fmt: skip
    assert _group(equal).mode is Mode.CENTRALIZED_FULL
    dearer = CentralizedCost(4, 2.0, math.nextafter(1.0, 2.0), 0.1, 0.25)
    assert _group(dearer).mode is Mode.CENTRALIZED_DECODER


def test_a_one_time_budget_admits_a_raw_upload_the_horizon_does_not_pay_for():
    assert _group(_cost(10), raw_upload_budget_s=10.0).mode is Mode.CENTRALIZED_FULL
    assert "within the one-time budget 10 s" in _group(_cost(10), raw_upload_budget_s=10.0).reason
    assert _group(_cost(10), raw_upload_budget_s=9.99).mode is Mode.CENTRALIZED_DECODER


def test_streamed_raw_data_are_priced_block_by_block_within_the_horizon():
    streaming = WorkSizes(100, 10_000, 10, 100, 0.25, raw_samples_per_round=300)
    assert _cost(2, streaming).raw_airtime_s == pytest.approx(6.0)  # 2 blocks of 300 fit the horizon
    assert _cost(5, streaming).raw_airtime_s == pytest.approx(10.0)  # 3 x 300 + 100: all 1,000 samples


def test_a_link_without_a_usable_mcs_makes_raw_data_infinite_and_sends_symbols():
    poor = ChannelReport.assumed(-10.0, 30.0)
    c = _cost(1000, channel=poor)
    assert math.isinf(c.raw_energy_j) and math.isinf(c.break_even_rounds)
    obs = UeObservation("weak", REPORT, poor, None, c)
    (a,) = group_ues([obs], GroupingConfig("joint", 2000.0, raw_upload_budget_s=1e9))
    assert a.mode is Mode.CENTRALIZED_DECODER


def test_missing_cost_means_symbols_and_bad_input_is_refused():
    assert "no cost estimate" in _group(None).reason and _group(None).mode is Mode.CENTRALIZED_DECODER
    with pytest.raises(PolicyError, match="rounds_remaining"):
        _cost(-1)
    with pytest.raises(PolicyError):
        GroupingConfig(raw_upload_budget_s=-1.0)


def test_default_scenario_weak_ue_pays_off_after_84_rounds():
    """ue0 of testbed/experiment's default scenario: Pi Zero 2 W at 5 dB, 400 MNIST images, 29 dBm."""
    from testbed.experiment.scenario import load_scenario
    from testbed.policy.profiles import default_profiles

    air = load_scenario().airtime()
    table = default_profiles().get("pi_zero_2").frequency_table  # 600..1000 MHz
    ue0 = CapabilityReport("ue0", 1e9 / 1.32e6, 1e9, table, 2**29, 40.0, 1.4e-27, 29.0, 29.0)
    work = WorkSizes(160, 127_016, 16, 785, 0.275)
    c = centralized_cost(ue0, ChannelReport.assumed(5.0, 29.0), work, 400, 60, air)
    assert c.raw_airtime_s == pytest.approx(air.upload(400 * 785, 5.0).on_air_s)  # bpsk-1/2, ARQ repairs included
    assert c.raw_airtime_s == pytest.approx(3.4098, abs=1e-4)
    assert c.raw_energy_j == pytest.approx(10 ** (-0.1) * c.raw_airtime_s)
    encoder_j = 1.4e-27 * 160 * 1.32e6 * 0.275 * 0.6e9**2
    sym_s = air.upload(160, 5.0, analog_symbols=160 * 16).on_air_s
    assert c.symbols_energy_j_per_round == pytest.approx(encoder_j + 10 ** (-0.1) * sym_s)
    assert math.ceil(c.break_even_rounds) == 84  # 44 with the former 1 dB margin (qpsk-1/2 at 5 dB)
