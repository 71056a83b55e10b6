"""Scenario TOML: typed, validated, clear errors."""

import math

import pytest
from conftest import make_scenario

from testbed.errors import ConfigError
from testbed.radio.links import configured_snr_db, received_power_dbm
from testbed.radio.scenario import load_scenario, parse_scenario

GOOD = """
seed = 5
center_freq_hz = 2.4e9
sample_rate_hz = 2.5e6
noise_floor_dbm = -90.0
[[nodes]]
id = "bs"
position_m = [0.0, 0.0, 3.0]
[[nodes]]
id = "ue1"
position_m = [10.0, 0.0, 3.0]
crystal_ppm = 4.0
"""


def test_parse_good_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    sc = load_scenario(path)
    assert sc.node_ids == ["bs", "ue1"]
    assert sc.distance_m("bs", "ue1") == pytest.approx(10.0)
    assert sc.cfo_hz("ue1", "bs") == pytest.approx(4e-6 * 2.4e9)
    assert sc.cfo_hz("bs", "ue1") == pytest.approx(-4e-6 * 2.4e9)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (GOOD.replace("crystal_ppm = 4.0", "crystal_ppm = 400.0"), "crystal_ppm"),
        (GOOD.replace("seed = 5", "seed = 5\nbogus = 1"), "bogus"),
        (GOOD.replace('id = "ue1"', 'id = "bs"'), "unique"),
        (GOOD.replace("[10.0, 0.0, 3.0]", "[0.0, 0.0, 3.0]"), "position"),
        (GOOD.replace("[10.0, 0.0, 3.0]", "[10.0]"), "position_m"),
        (GOOD.replace("noise_floor_dbm = -90.0", 'noise_floor_dbm = "loud"'), "noise_floor_dbm"),
        ("seed = [", "TOML"),
    ],
)
def test_bad_files_name_the_problem(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_scenario(text, source="t.toml")


def test_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_unknown_node_is_named():
    with pytest.raises(ConfigError, match="ghost"):
        make_scenario().node("ghost")


def test_configured_snr_uses_phy_definition():
    sc = make_scenario()
    p = received_power_dbm(sc, "bs", "ue1")
    assert configured_snr_db(sc, "bs", "ue1", occupied_fraction=52 / 64) == pytest.approx(
        p + 90.0 - 10 * math.log10(52 / 64)
    )
    # ue2 sends 5 dB weaker and sits twice as far: 5 + 6.02 dB below bs -> ue1 (free space)
    assert received_power_dbm(sc, "ue2", "bs") == pytest.approx(p - 5.0 - 20 * math.log10(2.0))
