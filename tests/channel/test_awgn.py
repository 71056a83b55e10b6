import numpy as np
import pytest

from testbed.channel import Awgn
from testbed.errors import ChannelError


def test_noise_variance_follows_the_per_subcarrier_snr_definition():
    awgn = Awgn(snr_db=10.0, rng=np.random.default_rng(0), occupied_fraction=52 / 64, signal_power=2.0)
    assert awgn.noise_variance == pytest.approx(2.0 / (52 / 64 * 10.0))


@pytest.mark.parametrize("snr_db", [-5.0, 3.6, 20.0])
def test_measured_noise_variance_matches_configured(rng, snr_db):
    awgn = Awgn(snr_db, rng, occupied_fraction=52 / 64)
    noise = awgn(np.zeros(400_000, np.complex64))
    assert noise.dtype == np.complex64
    # 400k complex samples: relative standard error of the variance estimate is ~0.16 %
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(awgn.noise_variance, rel=0.01)
    assert np.var(noise.real) == pytest.approx(np.var(noise.imag), rel=0.02)
    assert abs(np.mean(noise)) < 0.01 * np.sqrt(awgn.noise_variance)


def test_signal_passes_through_unchanged_in_the_mean(rng):
    x = np.exp(1j * np.linspace(0, 50, 100_000)).astype(np.complex64)
    y = Awgn(30.0, rng)(x)
    assert np.mean(np.abs(y - x) ** 2) == pytest.approx(1e-3, rel=0.03)


def test_same_seed_same_noise():
    x = np.ones(1000, np.complex64)
    a = Awgn(5.0, np.random.default_rng(7))(x)
    b = Awgn(5.0, np.random.default_rng(7))(x)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [{"snr_db": float("nan")}, {"snr_db": 5.0, "occupied_fraction": 0.0}, {"snr_db": 5.0, "signal_power": -1.0}],
)
def test_impossible_parameters_raise(rng, kwargs):
    with pytest.raises(ChannelError):
        Awgn(rng=rng, **kwargs)


def test_non_vector_input_raises(rng):
    with pytest.raises(ChannelError, match="shape"):
        Awgn(5.0, rng)(np.zeros((2, 3), np.complex64))
