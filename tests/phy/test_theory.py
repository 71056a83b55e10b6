import numpy as np
import pytest
from scipy.special import erfc

from testbed.errors import PhyError
from testbed.phy.modulation import demap_llr, map_bits
from testbed.phy.theory import uncoded_ber


def _q(x):
    return 0.5 * erfc(x / np.sqrt(2))


def test_bpsk_textbook_point():
    # BPSK needs Eb/N0 = 9.6 dB for BER 1e-5.
    assert uncoded_ber(9.6, 1) == pytest.approx(1e-5, rel=0.1)
    assert uncoded_ber(0.0, 1) == pytest.approx(_q(np.sqrt(2)), rel=1e-12)


def test_qpsk_is_bpsk_per_axis():
    es_n0_db = np.array([0.0, 5.0, 10.0])
    np.testing.assert_allclose(uncoded_ber(es_n0_db, 2), uncoded_ber(es_n0_db - 10 * np.log10(2), 1), rtol=1e-12)


def test_16qam_closed_form():
    # Gray 4-PAM per axis, worked out by hand: (3/4)Q(x) + (1/2)Q(3x) - (1/4)Q(5x), x = sqrt(Es / (5 N0)).
    es_n0 = 10 ** (12.0 / 10)
    x = np.sqrt(es_n0 / 5)
    expect = 0.75 * _q(x) + 0.5 * _q(3 * x) - 0.25 * _q(5 * x)
    assert uncoded_ber(12.0, 4) == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("k", [4, 6])
def test_high_snr_matches_nearest_neighbour_approximation(k):
    m = 2**k
    es_n0 = 10 ** (30 / 10)
    approx = 4 / k * (1 - 1 / np.sqrt(m)) * _q(np.sqrt(3 * es_n0 / (m - 1)))
    assert uncoded_ber(30.0, k) == pytest.approx(approx, rel=0.02)


@pytest.mark.parametrize(("k", "es_n0_db"), [(1, 4.0), (2, 7.0), (4, 12.0), (6, 17.0)])
def test_monte_carlo_hard_decisions_match_the_curve(k, es_n0_db, rng):
    n_sym = 100_000
    bits = rng.integers(0, 2, n_sym * k, dtype=np.uint8)
    noise_var = 10 ** (-es_n0_db / 10)
    noise = rng.normal(scale=np.sqrt(noise_var / 2), size=(n_sym, 2)) @ np.array([1, 1j])
    y = (map_bits(bits, k) + noise).astype(np.complex64)
    measured = np.mean((demap_llr(y, noise_var, k) < 0) != bits)
    # within 0.25 dB of the theory curve
    assert uncoded_ber(es_n0_db + 0.25, k) < measured < uncoded_ber(es_n0_db - 0.25, k)


def test_shapes_monotonicity_and_limits():
    snr = np.linspace(-10, 30, 41)
    for k in (1, 2, 4, 6):
        ber = uncoded_ber(snr, k)
        assert ber.shape == snr.shape and np.all(np.diff(ber) <= 0) and np.all(np.diff(ber[:15]) < 0)
        assert 0.3 < ber[0] <= 0.5
    assert uncoded_ber(-300.0, 6) == pytest.approx(0.5)
    assert np.all(uncoded_ber(10.0, 6) > uncoded_ber(10.0, 4))


def test_bad_input_is_refused():
    with pytest.raises(PhyError, match="bits_per_symbol"):
        uncoded_ber(10.0, 3)
    with pytest.raises(PhyError, match="NaN"):
        uncoded_ber(np.array([1.0, np.nan]), 2)
