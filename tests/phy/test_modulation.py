import numpy as np
import pytest

from testbed.errors import PhyError
from testbed.phy.modulation import constellation, demap_llr, hard_decision, map_bits

ORDERS = [1, 2, 4, 6]


def _pattern_bits(index: int, k: int) -> list[int]:
    return [(index >> (k - 1 - i)) & 1 for i in range(k)]


@pytest.mark.parametrize("k", ORDERS)
def test_unit_average_energy(k):
    points = constellation(k)
    assert points.dtype == np.complex64 and points.size == 2**k
    assert np.mean(np.abs(points) ** 2) == pytest.approx(1.0, abs=1e-6)
    assert np.unique(points).size == 2**k


def test_80211_table_entries():
    # IEEE 802.11-2020 17.3.5.8: 16QAM b0b1b2b3 = 0010 -> (-3 + 3j)/sqrt(10); 64QAM 011 110 -> (-3 + 1j)/sqrt(42).
    assert constellation(4)[0b0010] == pytest.approx((-3 + 3j) / np.sqrt(10))
    assert constellation(6)[0b011110] == pytest.approx((-3 + 1j) / np.sqrt(42))
    assert constellation(2)[0b10] == pytest.approx((1 - 1j) / np.sqrt(2))
    assert constellation(1).tolist() == [-1, 1]
    # First bit on air is the first of each group.
    assert map_bits(np.array([0, 0, 1, 0], np.uint8), 4)[0] == constellation(4)[0b0010]


@pytest.mark.parametrize("k", [2, 4, 6])
def test_gray_property_nearest_neighbours_differ_in_one_bit(k):
    points = constellation(k)
    d = np.abs(points[:, None] - points[None, :])
    np.fill_diagonal(d, np.inf)
    dmin = d.min()
    for a, b in zip(*np.nonzero(np.isclose(d, dmin, rtol=1e-4)), strict=True):
        assert bin(int(a) ^ int(b)).count("1") == 1


@pytest.mark.parametrize("k", ORDERS)
def test_noiseless_symbols_demap_to_the_sent_bits(k, rng):
    bits = rng.integers(0, 2, 600 * k, dtype=np.uint8)
    symbols = map_bits(bits, k)
    assert symbols.dtype == np.complex64
    llrs = demap_llr(symbols, 0.1, k)
    assert llrs.dtype == np.float32 and llrs.shape == bits.shape
    assert np.array_equal((llrs < 0).astype(np.uint8), bits)
    assert np.array_equal(hard_decision(symbols + np.complex64(0.01 + 0.01j), k), symbols)


@pytest.mark.parametrize("k", ORDERS)
def test_max_log_llrs_match_brute_force(k, rng):
    n = 2000
    y = (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(np.complex64) * 0.8
    noise_var = rng.uniform(0.05, 2.0, n).astype(np.float32)
    points = constellation(k)
    labels = np.array([_pattern_bits(i, k) for i in range(2**k)])  # (2^k, k)
    dist = np.abs(y[:, None].astype(np.complex128) - points[None, :]) ** 2  # (n, 2^k)
    expect = np.empty((n, k))
    for j in range(k):
        d1 = dist[:, labels[:, j] == 1].min(axis=1)
        d0 = dist[:, labels[:, j] == 0].min(axis=1)
        expect[:, j] = (d1 - d0) / noise_var
    got = demap_llr(y, noise_var, k).reshape(n, k)
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-3)


def test_llr_magnitude_scales_with_channel_gain():
    x = constellation(2)[[0, 3]]
    strong = demap_llr(x, np.array([0.1, 0.1], np.float32), 2)
    weak = demap_llr(x, np.array([1.0, 1.0], np.float32), 2)
    np.testing.assert_allclose(strong, 10 * weak, rtol=1e-5)
    # BPSK: LLR = 4 Re(y) / N0 with the sign flipped (bit 1 is +1).
    assert demap_llr(np.array([0.5 + 0.3j], np.complex64), 2.0, 1)[0] == pytest.approx(-1.0)


def test_tiny_noise_variance_keeps_llrs_finite():
    x = constellation(6)
    llrs = demap_llr(x, 1e-30, 6)
    assert np.isfinite(llrs).all()
    bits = np.array([[(i >> (5 - j)) & 1 for j in range(6)] for i in range(64)], np.uint8).ravel()
    assert np.array_equal((llrs < 0).astype(np.uint8), bits)


def test_hard_decision_clips_to_the_outer_ring():
    far = np.array([10 + 10j, -10 - 0.01j], np.complex64)
    np.testing.assert_allclose(hard_decision(far, 4), np.array([3 + 3j, -3 - 1j]) / np.sqrt(10), rtol=1e-6)
    assert hard_decision(np.array([-0.2 + 0.9j], np.complex64), 1)[0] == -1


def test_bad_input_is_refused():
    with pytest.raises(PhyError, match="bits_per_symbol"):
        constellation(3)
    with pytest.raises(PhyError, match="multiple"):
        map_bits(np.zeros(5, np.uint8), 4)
    with pytest.raises(PhyError, match="uint8"):
        map_bits(np.zeros(4, np.float32), 4)
    with pytest.raises(PhyError, match="complex64"):
        demap_llr(np.zeros(4, np.float32), 1.0, 2)
    with pytest.raises(PhyError, match="NaN"):
        demap_llr(np.array([np.nan + 0j], np.complex64), 1.0, 2)
    with pytest.raises(PhyError, match="noise_var"):
        demap_llr(np.zeros(2, np.complex64), 0.0, 2)
    with pytest.raises(PhyError, match="noise_var"):
        demap_llr(np.zeros(2, np.complex64), np.ones(3), 2)
