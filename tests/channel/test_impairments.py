import numpy as np
import pytest

from testbed.channel import DcOffset, IqImbalance, PhaseNoise
from testbed.errors import ChannelError


def test_phase_noise_has_wiener_increments_and_keeps_amplitude(rng):
    pn = PhaseNoise(linewidth_hz=1000.0, sample_rate_hz=1e6, rng=rng)
    y = pn(np.ones(200_000, np.complex64))
    np.testing.assert_allclose(np.abs(y), 1.0, atol=1e-5)
    increments = np.angle(y[1:] * np.conj(y[:-1]))
    assert np.var(increments) == pytest.approx(2 * np.pi * 1000.0 / 1e6, rel=0.02)


def test_phase_noise_continues_across_blocks():
    a = PhaseNoise(500.0, 1e6, np.random.default_rng(1))
    b = PhaseNoise(500.0, 1e6, np.random.default_rng(1))
    x = np.ones(1000, np.complex64)
    np.testing.assert_allclose(np.concatenate([b(x[:400]), b(x[400:])]), a(x), atol=1e-5)


def test_iq_imbalance_image_matches_the_model(rng):
    iq = IqImbalance(amplitude_db=1.0, phase_deg=3.0)
    tone = np.exp(2j * np.pi * 410 / 4096 * np.arange(4096)).astype(np.complex64)  # on an FFT bin: no leakage
    spectrum = np.abs(np.fft.fft(iq(tone))) ** 2
    wanted, image = spectrum[410], spectrum[-410]
    assert 10 * np.log10(wanted / image) == pytest.approx(iq.image_rejection_db, abs=0.05)
    assert 20 < iq.image_rejection_db < 30  # 1 dB / 3 degrees is a mediocre front end


def test_balanced_iq_is_identity(rng):
    x = (rng.standard_normal(100) + 1j * rng.standard_normal(100)).astype(np.complex64)
    np.testing.assert_allclose(IqImbalance(0.0, 0.0)(x), x, atol=1e-6)
    assert IqImbalance(0.0, 0.0).image_rejection_db == float("inf")


def test_dc_offset_adds_a_constant():
    y = DcOffset(0.1 - 0.2j)(np.zeros(10, np.complex64))
    np.testing.assert_allclose(y, 0.1 - 0.2j, atol=1e-7)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PhaseNoise(-1.0, 1e6, np.random.default_rng(0)),
        lambda: IqImbalance(float("nan"), 0.0),
        lambda: IqImbalance(0.0, 90.0),
        lambda: DcOffset(complex("nan")),
    ],
)
def test_impossible_parameters_raise(make):
    with pytest.raises(ChannelError):
        make()
