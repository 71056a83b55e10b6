import numpy as np
import pytest

from testbed.channel.awgn import Awgn
from testbed.channel.impairments import DcOffset
from testbed.channel.offsets import FrequencyOffset
from testbed.phy.numerology import PhyConfig
from testbed.phy.preamble import preamble_for
from testbed.phy.sync import Synchronizer

CFG = PhyConfig()


def _detect_and_refine(sync, iq):
    det = sync.detection_metric(iq)
    j = int(np.argmax(det.metric))
    assert det.metric[j] > sync.threshold
    return sync.refine(iq, j * sync.lag, sync.coarse_cfo(det.corr[j]))


@pytest.mark.parametrize("cfo_spacings", [-1.9, -0.6, 0.0, 1.3, 1.9])
def test_cfo_over_two_spacings_is_acquired_to_1_percent_at_10_db(rng, cfo_spacings):
    sync = Synchronizer(CFG)
    pre = preamble_for(CFG).samples
    errors = []
    for trial in range(8):
        offset = 150 + 13 * trial
        iq = np.concatenate([np.zeros(offset, np.complex64), pre, np.zeros(300, np.complex64)])
        iq = FrequencyOffset(cfo_spacings * CFG.subcarrier_spacing_hz, CFG.sample_rate_hz, initial_phase_rad=trial)(iq)
        iq = Awgn(10.0, rng, CFG.occupied_fraction)(iq)
        result = _detect_and_refine(sync, iq)
        assert result.burst_start == offset
        errors.append(result.cfo - cfo_spacings)
    assert np.sqrt(np.mean(np.square(errors))) < 0.01


def test_noise_and_dc_offset_alone_never_cross_the_threshold(rng):
    sync = Synchronizer(CFG)
    noise = Awgn(0.0, rng)(np.zeros(1 << 20, np.complex64))
    assert sync.detection_metric(noise).metric.max() < sync.threshold
    with_dc = DcOffset(0.5 + 0.3j)(noise)
    assert sync.detection_metric(with_dc).metric.max() < sync.threshold


def test_short_buffers_give_no_candidates_and_truncated_ltf_gives_none():
    sync = Synchronizer(CFG)
    assert sync.detection_metric(np.zeros(10, np.complex64)).metric.size == 0
    pre = preamble_for(CFG).samples
    assert sync.refine(pre[:200], 0, 0.0) is None


def test_a_sinusoid_is_recognised_as_a_tone_and_an_stf_is_not(rng):
    sync = Synchronizer(CFG)
    n = np.arange(400)
    assert sync.is_tone(np.exp(2j * np.pi * 0.1 * n).astype(np.complex64), 0)
    pre = Awgn(10.0, rng, CFG.occupied_fraction)(preamble_for(CFG).samples)
    assert not sync.is_tone(pre, 0)
