import numpy as np
import pytest

from testbed.errors import PhyError
from testbed.phy.estimation import DftEstimator, LsEstimator, make_estimator
from testbed.phy.numerology import PhyConfig

CFG = PhyConfig()


def _ltf(rng, h, noise_var, n_ltf=2):
    x = np.exp(2j * np.pi * rng.random(CFG.num_used))
    noise = np.sqrt(noise_var / 2) * (
        rng.standard_normal((n_ltf, CFG.num_used)) + 1j * rng.standard_normal((n_ltf, CFG.num_used))
    )
    return h * x + noise, x


def _channel(taps):
    k = CFG.used_subcarriers
    return sum(c * np.exp(-2j * np.pi * k * d / CFG.fft_size) for d, c in taps.items())


def test_dft_estimate_beats_ls_on_a_short_channel_and_reports_its_error(rng):
    h = _channel({4: 0.8, 5: 0.5j, 9: -0.3})
    noise_var = 0.1
    err_dft, err_ls, gains = [], [], []
    for _ in range(200):
        y, x = _ltf(rng, h, noise_var)
        dft, ls = DftEstimator(CFG).estimate(y, x), LsEstimator(CFG).estimate(y, x)
        err_dft.append(np.mean(np.abs(dft.h - h) ** 2))
        err_ls.append(np.mean(np.abs(ls.h - h) ** 2))
        gains.append(dft.error_gain.mean())
    assert np.mean(err_ls) == pytest.approx(noise_var / 2, rel=0.15)
    assert np.mean(err_dft) < np.mean(err_ls) / 4
    # the reported gain predicts the actual error to within the optimism of choosing taps from the same data
    assert np.mean(gains) * noise_var < np.mean(err_dft) < 2.5 * np.mean(gains) * noise_var


def test_noise_variance_is_estimated_from_the_two_symbols(rng):
    est = [DftEstimator(CFG).estimate(*_ltf(rng, _channel({4: 1.0}), 0.05)).noise_var for _ in range(100)]
    assert np.mean(est) == pytest.approx(0.05, rel=0.05)


def test_noiseless_flat_channel_is_exact_and_unknown_names_are_refused(rng):
    h = _channel({4: 1.0})
    y, x = _ltf(rng, h, 0.0)
    np.testing.assert_allclose(make_estimator("dft", CFG).estimate(y, x).h, h, atol=1e-5)
    with pytest.raises(PhyError, match="dft"):
        make_estimator("mmse", CFG)
    with pytest.raises(PhyError, match="two training"):
        LsEstimator(CFG).estimate(y[:1], x)


def test_a_single_path_keeps_few_taps_even_at_high_snr(rng):
    # one path leaks into every tap through the null subcarriers; the greedy fit must not keep them all
    h = _channel({4: 0.9 - 0.4j})
    est = DftEstimator(CFG).estimate(*_ltf(rng, h, 1e-4))
    assert est.error_gain.mean() < 3 / CFG.num_used
    assert np.mean(np.abs(est.h - h) ** 2) < 1e-5


def test_a_decoded_64qam_frame_as_pilots_estimates_far_better_than_the_ltf(rng):
    h = _channel({3: 0.7, 4: 0.5j, 6: -0.4, 9: 0.25 + 0.2j, 12: 0.15})
    noise_var = 0.01
    levels = np.arange(-7, 8, 2) / np.sqrt(42)
    err_ltf, err_known, predicted = [], [], []
    for _ in range(50):
        y, x = _ltf(rng, h, noise_var)
        ltf = DftEstimator(CFG).estimate(y, x)
        x_qam = rng.choice(levels, (40, CFG.num_used)) + 1j * rng.choice(levels, (40, CFG.num_used))
        noise = np.sqrt(noise_var / 2) * (rng.standard_normal(x_qam.shape) + 1j * rng.standard_normal(x_qam.shape))
        known = DftEstimator(CFG).estimate_known(h * x_qam + noise, x_qam, ltf.noise_var, ltf.noise_dof)
        err_ltf.append(np.mean(np.abs(ltf.h - h) ** 2))
        err_known.append(np.mean(np.abs(known.h - h) ** 2))
        predicted.append(known.error_gain.mean() * noise_var)
    assert np.mean(err_known) < np.mean(err_ltf) / 4
    assert np.mean(err_known) < 3 * np.mean(predicted)
