import numpy as np
import pytest

from testbed.channel import Multipath
from testbed.channel.multipath import exponential_profile, rms_delay_spread
from testbed.errors import ChannelError


@pytest.mark.parametrize(("tau", "num_taps"), [(0.5, None), (2.0, None), (2.0, 8), (7.3, None)])
def test_profile_has_the_requested_rms_delay_spread_and_unit_power(tau, num_taps):
    mp = Multipath(tau, np.random.default_rng(0), num_taps=num_taps)
    pdp = mp.power_delay_profile
    assert pdp.sum() == pytest.approx(1.0)
    assert rms_delay_spread(pdp) == pytest.approx(tau, rel=1e-6)
    assert np.all(np.diff(pdp) < 0)


@pytest.mark.parametrize("k_factor_db", [None, 6.0])
def test_realisations_have_unit_mean_power_and_the_rms_spread(rng, k_factor_db):
    mp = Multipath(2.0, rng, k_factor_db=k_factor_db)
    taps = np.array([mp.draw_taps() for _ in range(20_000)])
    power = np.abs(taps) ** 2
    assert power.sum(axis=1).mean() == pytest.approx(1.0, abs=0.03)
    assert rms_delay_spread(power.mean(axis=0)) == pytest.approx(2.0, rel=0.03)


def test_rician_first_tap_has_the_k_factor(rng):
    mp = Multipath(0.0, rng, k_factor_db=10.0)
    h = np.array([mp.draw_taps()[0] for _ in range(20_000)])
    # moment estimator: LOS power A^2 = sqrt(2 E|h|^2^2 - E|h|^4), K = A^2 / (E|h|^2 - A^2)
    m2, m4 = np.mean(np.abs(h) ** 2), np.mean(np.abs(h) ** 4)
    assert m2 == pytest.approx(1.0, abs=0.02)
    los_power = np.sqrt(2 * m2**2 - m4)
    assert 10 * np.log10(los_power / (m2 - los_power)) == pytest.approx(10.0, abs=0.7)


def test_output_is_the_convolution_with_the_taps_used(rng):
    mp = Multipath(2.0, rng)
    x = (rng.standard_normal(500) + 1j * rng.standard_normal(500)).astype(np.complex64)
    y = mp(x)
    assert y.dtype == np.complex64 and y.shape == x.shape
    np.testing.assert_allclose(y, np.convolve(x, mp.taps)[: x.size], atol=1e-5)


def test_block_fading_changes_taps_per_call_and_static_does_not(rng):
    x = np.zeros(100, np.complex64)
    fading = Multipath(2.0, rng, block_fading=True)
    fading(x)
    first = fading.taps
    fading(x)
    assert not np.allclose(first, fading.taps)
    static = Multipath(2.0, rng, block_fading=False)
    first = static.taps
    static(x)
    np.testing.assert_array_equal(first, static.taps)


def test_static_channel_block_by_block_equals_one_block(rng):
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    one = Multipath(3.0, np.random.default_rng(3), block_fading=False)(x)
    mp = Multipath(3.0, np.random.default_rng(3), block_fading=False)
    pieces = np.concatenate([mp(x[a:b]) for a, b in [(0, 5), (5, 17), (17, 400), (400, 1000)]])
    np.testing.assert_allclose(pieces, one, atol=1e-5)


def test_same_seed_same_output(rng):
    x = (rng.standard_normal(300) + 1j * rng.standard_normal(300)).astype(np.complex64)
    a = Multipath(2.0, np.random.default_rng(11), k_factor_db=3.0)
    b = Multipath(2.0, np.random.default_rng(11), k_factor_db=3.0)
    for _ in range(3):
        np.testing.assert_array_equal(a(x), b(x))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rms_delay_spread_samples": -1.0},
        {"rms_delay_spread_samples": float("inf")},
        {"rms_delay_spread_samples": 5.0, "num_taps": 4},
        {"rms_delay_spread_samples": 1.0, "num_taps": 1},
        {"rms_delay_spread_samples": 1.0, "num_taps": 0},
        {"rms_delay_spread_samples": 1.0, "k_factor_db": float("nan")},
    ],
)
def test_impossible_parameters_raise(rng, kwargs):
    with pytest.raises(ChannelError):
        Multipath(rng=rng, **kwargs)


def test_flat_fading_is_one_tap():
    assert exponential_profile(0.0, 1).tolist() == [1.0]
