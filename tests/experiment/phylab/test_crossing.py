import math

import numpy as np
import pytest

from testbed.channel import Multipath
from testbed.experiment.phylab.ber import measure_paired, refine
from testbed.experiment.phylab.crossing import PairedPoint, fitted_crossing, logistic_fit, paired_crossings
from testbed.experiment.phylab.link import Reception, multipath_cfo
from testbed.phy import OfdmModem


def _per(snr_db, crossing_db, slope_per_db=-1.2):
    """Logistic PER curve through 10% at ``crossing_db``."""
    logit = math.log(0.1 / 0.9) + slope_per_db * (np.asarray(snr_db) - crossing_db)
    return 1 / (1 + np.exp(-logit))


def test_logistic_fit_recovers_the_curve_and_its_10_percent_crossing(rng):
    snr = np.linspace(10, 14, 9)
    frames = np.full(snr.size, 4000)
    errors = rng.binomial(frames, _per(snr, 12.3))
    a, b = logistic_fit(snr, errors, frames)
    assert b == pytest.approx(-1.2, rel=0.1)
    assert fitted_crossing(snr, errors, frames, 0.1) == pytest.approx(12.3, abs=0.05)
    exact = _per(snr, 12.3) * 1e9  # expected counts: the MLE is the curve itself
    assert fitted_crossing(snr, exact, np.full(snr.size, 1e9), 0.1) == pytest.approx(12.3, abs=1e-6)


def test_data_that_cannot_fix_a_curve_gives_none():
    frames = np.array([50, 50])
    assert logistic_fit(np.array([1.0, 1.0]), np.array([10, 5]), frames) is None  # one SNR only
    assert logistic_fit(np.array([1.0, 2.0]), np.array([0, 0]), frames) is None  # no failure at all
    assert logistic_fit(np.array([1.0, 2.0]), np.array([50, 0]), frames) is None  # a clean step: no finite slope
    assert fitted_crossing(np.array([1.0, 2.0]), np.array([5, 20]), frames, 0.1) is None  # PER rising


def _points(rng, loss_db, snrs, frames, paired):
    """Frames whose fate is mostly the channel draw u (shared when ``paired``) plus a little noise of their own."""
    points = []
    for snr in snrs:
        u = rng.random(frames)  # the channel draw: a frame fails when u < PER
        v = u if paired else rng.random(frames)
        jitter = 0.003 * rng.standard_normal((2, frames))
        points.append(PairedPoint(snr, u + jitter[0] < _per(snr - loss_db, 12.0), v + jitter[1] < _per(snr, 12.0)))
    return points


def test_paired_frames_measure_the_loss_more_precisely_than_independent_ones(rng):
    snrs = np.linspace(11, 13.5, 6)
    fit = paired_crossings(_points(rng, 0.4, snrs, 400, paired=True), 0.1, rng)
    assert fit["genie_db"] == pytest.approx(12.0, abs=3 * fit["genie_se_db"])
    assert fit["loss_db"] == pytest.approx(0.4, abs=3 * fit["loss_se_db"])
    unpaired = paired_crossings(_points(rng, 0.4, snrs, 400, paired=False), 0.1, rng)
    assert fit["loss_se_db"] < 0.7 * unpaired["loss_se_db"]  # what the common channel draws buy
    assert unpaired["loss_db"] == pytest.approx(0.4, abs=3 * unpaired["loss_se_db"])


def test_paired_frames_see_the_same_channel_draw_and_their_own_noise(rng):
    modem = OfdmModem()
    seen: dict[str, list] = {"rx": [], "genie": []}

    def recorder(name):
        def trial(snr_db, channel, trial_rng):
            models = channel(trial_rng)
            taps = next(m for m in models if isinstance(m, Multipath)).draw_taps()
            seen[name].append((taps, trial_rng.random()))
            return Reception(bool(trial_rng.random() < 0.5), True, 0, 1, None, tuple(models))

        return trial

    point = PairedPoint(10.0, np.empty(0, bool), np.empty(0, bool))
    measure_paired(recorder("rx"), recorder("genie"), point, multipath_cfo(modem), 7, 5, rng)
    measure_paired(recorder("rx"), recorder("genie"), point, multipath_cfo(modem), 7, 3, rng)  # adds frames 5..7
    assert point.receiver_failed.size == point.genie_failed.size == 8
    for (rx_taps, rx_noise), (genie_taps, genie_noise) in zip(seen["rx"], seen["genie"], strict=True):
        np.testing.assert_array_equal(rx_taps, genie_taps)
        assert rx_noise != genie_noise
    assert len({taps.tobytes() for taps, _ in seen["rx"]}) == 8  # every frame a fresh draw


def test_refine_finds_a_known_loss_from_rough_crossings_half_a_db_off(rng):
    def curve(crossing_db):
        def trial(snr_db, channel, trial_rng):
            u = channel(None)[0]  # the shared draw
            return Reception(bool(u >= _per(snr_db, crossing_db)), True, 0, 1, None, ())  # delivered

        return trial

    def shared_draw(draw_rng):
        return (draw_rng.random(),)

    fit, points = refine(curve(12.5), curve(12.0), shared_draw, (13.0, 11.5), 0.8, 3000, rng)
    # the adaptive design spreads ~1.35x its bootstrap s.e. (21 synthetic runs; 0.94x on a fixed design)
    assert fit["receiver_db"] == pytest.approx(12.5, abs=0.25) and fit["receiver_se_db"] < 0.1
    assert fit["loss_db"] == pytest.approx(0.5, abs=0.15) and fit["loss_se_db"] < 0.06
    assert sum(p.receiver_failed.size for p in points) >= 2900
