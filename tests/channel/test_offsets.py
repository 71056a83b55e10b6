import numpy as np
import pytest

from testbed.channel import FrequencyOffset, SamplingClockOffset, TimingOffset
from testbed.errors import ChannelError


def bandlimited(t: np.ndarray, rng_seed: int = 5, max_freq: float = 0.4) -> np.ndarray:
    """An analytic band-limited signal (sum of tones within +-max_freq of the sample rate) at positions t."""
    r = np.random.default_rng(rng_seed)
    freqs = r.uniform(-max_freq, max_freq, 40)
    phases = r.uniform(0, 2 * np.pi, 40)
    return np.exp(1j * (2 * np.pi * np.outer(t, freqs) + phases)).sum(axis=1) / np.sqrt(40)


def error_db(y: np.ndarray, ref: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.abs(y - ref) ** 2) / np.mean(np.abs(ref) ** 2))


def test_cfo_rotates_at_the_configured_rate():
    fo = FrequencyOffset(cfo_hz=12_345.0, sample_rate_hz=1e6, initial_phase_rad=0.3)
    y = fo(np.ones(1000, np.complex64))
    np.testing.assert_allclose(np.angle(y[0]), 0.3, atol=1e-6)
    step = np.angle(y[1:] * np.conj(y[:-1]))
    np.testing.assert_allclose(step, 2 * np.pi * 12_345.0 / 1e6, atol=1e-5)


def test_cfo_phase_is_continuous_across_blocks():
    x = np.ones(10_000, np.complex64)
    one = FrequencyOffset(3_000.0, 2.5e6)(x)
    fo = FrequencyOffset(3_000.0, 2.5e6)
    pieces = np.concatenate([fo(x[a:b]) for a, b in [(0, 1), (1, 777), (777, 5000), (5000, 10_000)]])
    np.testing.assert_allclose(pieces, one, atol=1e-5)


def test_fractional_delay_matches_the_analytic_signal():
    n = 2000
    x = bandlimited(np.arange(n)).astype(np.complex64)
    for delay in [0.0, 0.5, 3.37, 10.91, -2.25]:
        y = TimingOffset(delay)(x)
        assert y.shape == (n,) and y.dtype == np.complex64
        inner = slice(100, n - 100)  # away from the block edges, where the zeros outside matter
        assert error_db(y[inner], bandlimited(np.arange(n) - delay)[inner]) < -55.0


def test_integer_delay_shifts_zeros_in(rng):
    x = (rng.standard_normal(50) + 1j * rng.standard_normal(50)).astype(np.complex64)
    y = TimingOffset(7.0)(x)
    np.testing.assert_allclose(y[:7], 0, atol=1e-6)
    np.testing.assert_allclose(y[7:], x[:-7], atol=1e-5)
    np.testing.assert_allclose(TimingOffset(1e6)(x), 0, atol=1e-6)


@pytest.mark.parametrize("ppm", [40.0, -40.0, 2000.0])
def test_sampling_clock_offset_changes_length_and_follows_the_signal(ppm):
    n = 50_000
    x = bandlimited(np.arange(n)).astype(np.complex64)
    sco = SamplingClockOffset(ppm)
    y = sco(x)
    assert abs(y.size - n * (1 + ppm * 1e-6)) <= 1
    k = np.arange(y.size)
    ref = bandlimited(k * sco.step_samples - SamplingClockOffset.LATENCY_SAMPLES)
    inner = slice(100, y.size - 100)
    assert error_db(y[inner], ref[inner]) < -55.0


def test_sampling_clock_offset_block_by_block_equals_one_block():
    n = 30_000
    x = bandlimited(np.arange(n)).astype(np.complex64)
    one = SamplingClockOffset(300.0)(x)
    sco = SamplingClockOffset(300.0)
    cuts = [0, 3, 40, 4096, 12_000, 29_999, n]
    pieces = np.concatenate([sco(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
    assert pieces.size == one.size
    np.testing.assert_allclose(pieces, one, atol=1e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda: FrequencyOffset(2e6, 2.5e6),
        lambda: FrequencyOffset(100.0, 0.0),
        lambda: TimingOffset(float("nan")),
        lambda: SamplingClockOffset(1e5),
        lambda: SamplingClockOffset(float("inf")),
    ],
)
def test_impossible_parameters_raise(make):
    with pytest.raises(ChannelError):
        make()
