import numpy as np

from testbed.phy.grid import grid_for
from testbed.phy.numerology import PhyConfig
from testbed.phy.tracking import PilotTracker, moving_sum

CFG = PhyConfig()


def test_common_phase_and_a_3_sample_drift_are_recovered(rng):
    n_sym = 400
    grid = grid_for(CFG)
    ref = grid.pilot_values(0, n_sym)
    h = np.exp(2j * np.pi * rng.random(CFG.num_pilots))
    drift = np.linspace(0, 3.0, n_sym)  # a 40 ppm clock over a long frame
    phase = 0.02 * np.arange(n_sym) + 0.3  # residual CFO plus an offset
    angle = phase[:, None] + 2 * np.pi * np.outer(drift, CFG.pilot_indices) / CFG.fft_size
    noise = 0.1 * (rng.standard_normal((n_sym, 4)) + 1j * rng.standard_normal((n_sym, 4)))
    y = h * ref * np.exp(1j * angle) + noise
    track = PilotTracker(CFG).track(y, h, ref, noise_var=0.02)
    assert np.max(np.abs(track.drift_samples - drift)) < 0.1
    assert np.max(np.abs(np.angle(np.exp(1j * (track.phase_rad - phase))))) < 0.1
    expected_cfo = 0.02 / (2 * np.pi * CFG.symbol_len / CFG.fft_size)  # spacings
    assert abs(track.cfo_residual - expected_cfo) < 0.05 * expected_cfo
    rot = track.rotation(CFG.pilot_indices, CFG.fft_size)
    assert np.mean(np.abs(y / (h * ref * rot) - 1)) < 0.2


def test_moving_sum_is_centred_and_truncated():
    x = np.arange(5, dtype=np.complex128)[:, None]
    np.testing.assert_allclose(moving_sum(x, 1)[:, 0], [1, 3, 6, 9, 7])
