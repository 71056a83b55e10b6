import numpy as np
import pytest

from testbed.errors import ConfigError, PhyError
from testbed.phy.layout import (
    analog_burst_num_samples,
    burst_num_samples,
    header_num_symbols,
    payload_num_symbols,
    phy_bit_rate_bps,
    preamble_num_samples,
)
from testbed.phy.mcs import CODED_MCS, MCS_BY_INDEX, MCS_TABLE, get_mcs
from testbed.phy.numerology import PhyConfig


def test_default_numerology_is_80211a_like():
    cfg = PhyConfig()
    assert (cfg.num_data, cfg.num_pilots, cfg.num_used) == (48, 4, 52)
    assert 0 not in cfg.used_subcarriers
    assert list(cfg.pilot_indices) == [-21, -7, 7, 21]
    assert cfg.symbol_len == 80
    assert cfg.subcarrier_spacing_hz == pytest.approx(2.5e6 / 64)
    bins = cfg.fft_bins(cfg.used_subcarriers)
    assert bins.min() == 1 and bins.max() == 63 and 32 not in bins


def test_80211a_data_bits_per_symbol():
    # IEEE 802.11-2020 Table 17-4: N_DBPS 24, 36, 48, 72, 96, 144, 192, 216.
    got = [get_mcs(n).data_bits_per_ofdm_symbol(48) for n in CODED_MCS]
    assert got == [24, 36, 48, 72, 96, 144, 192, 216]


def test_mcs_indices_fit_the_4_bit_header_field_and_are_unique():
    assert len(MCS_BY_INDEX) == len(MCS_TABLE)
    assert all(0 <= m.index < 16 for m in MCS_TABLE.values())


def test_burst_length_formula():
    cfg = PhyConfig()
    assert preamble_num_samples(cfg) == 320
    assert header_num_symbols(cfg) == 3
    # 1000 bytes + CRC = 8032 bits + 6 tail = 8038 bits; QPSK 1/2 carries 48 per symbol -> 168 symbols.
    assert payload_num_symbols(cfg, 1000, "qpsk-1/2") == 168
    assert burst_num_samples(cfg, 1000, "qpsk-1/2") == 320 + (3 + 168) * 80
    assert analog_burst_num_samples(cfg, 100) == 320 + (3 + 3) * 80
    assert phy_bit_rate_bps(cfg, "64qam-3/4") == pytest.approx(216 / 32e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate_hz": 1e3},
        {"fft_size": 48},
        {"cp_len": 0},
        {"occupied_half_width": 32},
        {"pilot_subcarriers": (0, 7)},
        {"pilot_subcarriers": (7, 7)},
        {"max_payload_bytes": 0},
    ],
)
def test_invalid_numerology_is_refused_with_a_config_error(kwargs):
    with pytest.raises(ConfigError):
        PhyConfig(**kwargs)


def test_bad_payload_sizes_and_mcs_names_are_refused():
    cfg = PhyConfig()
    with pytest.raises(PhyError, match="max_payload_bytes"):
        payload_num_symbols(cfg, cfg.max_payload_bytes + 1, "qpsk-1/2")
    with pytest.raises(PhyError, match="qpsk-1/2"):
        get_mcs("qpsk-7/8")


def test_numerology_is_hashable_and_equal_by_value():
    assert PhyConfig() == PhyConfig() and hash(PhyConfig()) == hash(PhyConfig())
    assert np.array_equal(PhyConfig(fft_size=128, occupied_half_width=53).used_subcarriers[:2], [-53, -52])
