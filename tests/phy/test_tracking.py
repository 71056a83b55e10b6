import numpy as np

from testbed.phy.grid import grid_for
from testbed.phy.numerology import PhyConfig
from testbed.phy.tracking import PilotTracker, common_phase

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


def test_phase_window_follows_phase_noise_and_averages_without_it(rng):
    n_sym = 200
    grid = grid_for(CFG)
    ref = grid.pilot_values(0, n_sym)
    h = np.ones(CFG.num_pilots)
    noise = 0.05 * (rng.standard_normal((n_sym, 4)) + 1j * rng.standard_normal((n_sym, 4)))
    walk = np.cumsum(rng.normal(0, 0.1, n_sym))  # strong phase noise: 0.1 rad per symbol
    tracker = PilotTracker(CFG)
    noisy = tracker.track(h * ref * np.exp(1j * walk)[:, None] + noise, h, ref, noise_var=0.005)
    assert noisy.phase_window <= 3
    assert np.sqrt(np.mean(np.angle(np.exp(1j * (noisy.phase_rad - walk))) ** 2)) < 0.05
    steady = tracker.track(h * ref + noise, h, ref, noise_var=0.005)
    assert steady.phase_window == 2 * tracker.phase_half_window + 1


def test_header_phase_is_one_average_over_all_symbols():
    grid = grid_for(CFG)
    ref = grid.pilot_values(0, 3)
    h = np.exp(1j * np.arange(4.0))
    track = common_phase(h * ref * np.exp(0.4j), h, ref, noise_var=0.1)
    np.testing.assert_allclose(track.phase_rad, 0.4, atol=1e-6)
    assert track.phase_window == 3 and np.all(track.drift_samples == 0)


def test_no_clock_offset_gives_little_drift_despite_noise_and_an_imperfect_channel_estimate(rng):
    # Rayleigh pilots at ~10 dB with an LTF-like estimate error: the old fit through zero at the estimate's
    # time turned the estimate's pilot-phase error into a slope (0.11-0.14 samples rms by the frame's end)
    n_sym, noise_var = 170, 0.1
    ref = grid_for(CFG).pilot_values(0, n_sym)
    tracker, end_drift = PilotTracker(CFG), []
    for _ in range(100):
        h = (rng.standard_normal(4) + 1j * rng.standard_normal(4)) / np.sqrt(2)
        h_est = h + 0.1 * (rng.standard_normal(4) + 1j * rng.standard_normal(4))
        noise = np.sqrt(noise_var / 2) * (rng.standard_normal((n_sym, 4)) + 1j * rng.standard_normal((n_sym, 4)))
        end_drift.append(tracker.track(h * ref + noise, h_est, ref, noise_var).drift_samples[-1])
    assert np.sqrt(np.mean(np.square(end_drift))) < 0.09


def test_without_phase_noise_a_noisy_frame_still_averages_the_longest_window(rng):
    # 4 dB, no phase noise: the old rule read the noise in the symbol-to-symbol jumps as a random walk and
    # shortened the window of about half of such frames (measured 107 of 200 kept the longest)
    n_sym, noise_var = 170, 0.4
    ref = grid_for(CFG).pilot_values(0, n_sym)
    tracker, windows = PilotTracker(CFG), []
    for _ in range(100):
        h = np.exp(2j * np.pi * rng.random(CFG.num_pilots))
        noise = np.sqrt(noise_var / 2) * (rng.standard_normal((n_sym, 4)) + 1j * rng.standard_normal((n_sym, 4)))
        windows.append(tracker.track(h * ref + noise, h, ref, noise_var).phase_window)
    assert np.mean(np.array(windows) == 2 * tracker.phase_half_window + 1) >= 0.9
