"""Scenario validation and PHY-exact airtime."""

import pytest

from testbed.errors import ConfigError
from testbed.experiment.airtime import LinkModel, PhyAirtime
from testbed.experiment.scenario import load_scenario
from testbed.learning.codec import CodecConfig
from testbed.phy.layout import analog_burst_num_samples, burst_num_samples
from testbed.phy.mcs import get_mcs
from testbed.phy.numerology import PhyConfig


def test_default_scenario_is_the_heterogeneous_one() -> None:
    s = load_scenario()
    assert len(s.ues) == 10 and sum(u.weak for u in s.ues) == 4
    snrs = [u.snr_db for u in s.ues]
    assert min(snrs) == 5.0 and max(snrs) == 25.0
    profiles = s.profiles(CodecConfig())
    weak = [p for p in profiles if p.weak]
    strong = [p for p in profiles if not p.weak]
    assert max(p.cpu_freq_hz for p in weak) < min(p.cpu_freq_hz for p in strong)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"run": {"rounds": 0}}, "rounds"),
        ({"run": {"deadline_s": -1.0}}, "deadline_s"),
        ({"training": {"partition": "stripes"}}, "partition"),
        ({"training": {"num_shards": 4}}, "num_shards is for the daemons"),
        ({"clock": {"bs_board": "cray_1"}}, "cray_1"),
        ({"training": {"learning_rate": 0.1}}, "unknown field"),
        ({"training": {"server_lr": "fast"}}, "Expected `float`"),
        ({"policy": {"raw_upload_budget_s": -1.0}}, "raw_upload_budget_s"),
        ({"policy": {"deadline_factor": 0.5}}, "deadline_factor"),
    ],
)
def test_bad_scenarios_are_refused_with_the_field_named(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_scenario(overrides=overrides)


def test_missing_board_and_unreadable_file(tmp_path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('name = "x"\n[[ues]]\nname = "a"\nboard = "pi_9"\nweak = true\nsnr_db = 5.0\ntx_power_dbm = 20.0\n')
    with pytest.raises(ConfigError, match="pi_9"):
        load_scenario(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")


def test_mcs_choice_is_monotone_and_respects_margin() -> None:
    air = PhyAirtime(PhyConfig(), LinkModel(mcs_margin_db=1.0))
    rates = [air.choose_mcs(s).data_bits_per_ofdm_symbol(48) for s in range(0, 30)]
    assert rates == sorted(rates)
    assert air.choose_mcs(4.5).name == "bpsk-3/4"  # qpsk-1/2 needs 3.6 + 1.0
    assert air.choose_mcs(4.6).name == "qpsk-1/2"
    assert air.choose_mcs(30.0).name == "64qam-3/4"


def test_airtime_is_the_exact_burst_length_when_the_link_is_clean() -> None:
    phy = PhyConfig()
    air = PhyAirtime(phy, LinkModel(frame_payload_bytes=1000, analog_frame_symbols=480))
    mcs = get_mcs("64qam-3/4")
    expected = (2 * burst_num_samples(phy, 1000, mcs) + burst_num_samples(phy, 500, mcs)) / phy.sample_rate_hz
    assert air.upload_s(2500, 60.0) == pytest.approx(expected, rel=1e-9)
    analog = (2 * analog_burst_num_samples(phy, 480) + analog_burst_num_samples(phy, 40)) / phy.sample_rate_hz
    assert air.analog_upload_s(1000) == pytest.approx(analog)
    assert air.upload_s(0, 10.0) == 0.0


def test_repairs_follow_the_per_model() -> None:
    phy = PhyConfig()
    air = PhyAirtime(phy, LinkModel(frame_payload_bytes=1000, mcs_margin_db=0.0, per_slope_db_per_decade=1.0))
    mcs = air.choose_mcs(3.6)
    assert mcs.name == "qpsk-1/2"
    assert air.frame_error_rate(3.6, mcs, 1000) == pytest.approx(0.1)  # the reference point
    assert air.frame_error_rate(4.6, mcs, 1000) == pytest.approx(0.01)  # one decade per dB
    assert air.frame_error_rate(3.6, mcs, 2000) == pytest.approx(1 - 0.9**2)
    clean = burst_num_samples(phy, 1000, mcs) / phy.sample_rate_hz
    assert air.upload_s(1000, 3.6) == pytest.approx(clean / 0.9)  # 1 / (1 - PER) transmissions
    with pytest.raises(ConfigError, match="loses"):
        air.upload_s(1000, -10.0)
