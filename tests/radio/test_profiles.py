"""The shipped firmware_cfg files load, and bad profiles are refused with clear errors."""

from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.radio.calibration import load_calibration
from testbed.radio.profiles import load_profile

FIRMWARE_CFG = Path(__file__).resolve().parents[2] / "firmware_cfg"


def test_shipped_profiles_and_calibration_load():
    bs = load_profile(FIRMWARE_CFG / "profiles.toml", "bs")
    assert bs.sample_rate_hz == 2.5e6 and bs.rx_gain_mode == "manual" and bs.bandwidth_hz == 3e6
    assert load_profile(FIRMWARE_CFG / "profiles.toml", "ue").rx_gain_mode == "slow_attack"
    cal = load_calibration(FIRMWARE_CFG / "tx_calibration.example.toml")
    assert cal.power_at_0db_dbm("104473ce69910004f8ff1700b1c9c95c4b", 2.4e9) == pytest.approx(4.1)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            '[bs]\ncenter_freq_hz = 2.4e9\nsample_rate_hz = 2.5e6\ntx_power_dbm = 0.0\nrx_gain_mode = "max"\n',
            "rx_gain_mode",
        ),
        ("[bs]\ncenter_freq_hz = 2.4e9\ntx_power_dbm = 0.0\n", "sample_rate_hz"),
        ("[ue]\ncenter_freq_hz = 2.4e9\nsample_rate_hz = 2.5e6\ntx_power_dbm = 0.0\n", "no profile 'bs'"),
    ],
)
def test_bad_profiles(tmp_path, text, fragment):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_profile(path, "bs")
