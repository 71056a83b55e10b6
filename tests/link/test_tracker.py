import math

import msgspec
import numpy as np
import pytest

from testbed.errors import LinkError
from testbed.link.framelink import Heard
from testbed.link.messages import ChannelReport
from testbed.link.tracker import ChannelTracker


def _heard(snr_db, cfo_hz=0.0, channel=None, ok=True):
    return Heard(b"x" if ok else None, 0, "qpsk-1/2", snr_db, cfo_hz, channel)


def test_report_averages_linear_snr_over_the_last_frames():
    t = ChannelTracker(depth=3)
    assert t.snr_db(0, 1) is None and t.report(0, 1) is None
    t.add(0, 1, _heard(0.0))  # pushed out by the next three
    for snr, ok in ((10.0, True), (20.0, False), (math.nan, True)):
        t.add(0, 1, _heard(snr, cfo_hz=100.0, channel=np.full(52, 2.0, np.complex64), ok=ok))
    rep = t.report(0, 1)
    assert rep.num_frames == 3 and rep.snr_db == pytest.approx(10 * math.log10((10 + 100) / 2))
    assert rep.frame_success == pytest.approx(2 / 3) and rep.cfo_hz == 100.0
    assert rep.mean_gain_db == pytest.approx(10 * math.log10(4.0)) and len(rep.channel_re) == 52
    assert msgspec.json.decode(msgspec.json.encode(rep), type=ChannelReport) == rep
    assert t.links() == [(0, 1)]


def test_frames_without_channel_estimates_give_no_gain():
    t = ChannelTracker()
    t.add(2, 0, _heard(15.0))
    rep = t.report(2, 0)
    assert rep.mean_gain_db is None and rep.channel_re == [] and rep.snr_db == pytest.approx(15.0)
    with pytest.raises(LinkError, match="depth"):
        ChannelTracker(depth=0)
