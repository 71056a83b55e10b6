import msgspec
import numpy as np
import pytest

from testbed.errors import LinkError
from testbed.link.messages import ChannelReport, Nack, SlotSchedule, make_nack, nack_missing
from testbed.link.tdma import make_schedule


def test_nack_bitmap_round_trips_through_msgpack():
    mask = np.zeros(1000, dtype=bool)
    mask[[0, 7, 8, 999]] = True
    nack = msgspec.msgpack.decode(msgspec.msgpack.encode(make_nack(42, mask)), type=Nack)
    assert (nack.object_id, nack.frame_count, len(nack.missing)) == (42, 1000, 125)
    assert nack_missing(nack, 1000).tolist() == [0, 7, 8, 999]


def test_empty_nack_means_all_missing_and_wrong_count_is_refused():
    assert nack_missing(make_nack(1, np.zeros(0, bool)), 5).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(LinkError, match="says 10 frames"):
        nack_missing(make_nack(1, np.ones(10, bool)), 12)


def test_decoder_refuses_oversized_or_unknown_fields():
    huge = msgspec.msgpack.encode({"object_id": 1, "frame_count": 8, "missing": bytes(1 << 18)})
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(huge, type=Nack)
    extra = msgspec.msgpack.encode({"object_id": 1, "frame_count": 8, "missing": b"\x01", "evil": 1})
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(extra, type=Nack)
    too_many = msgspec.json.encode({"window_samples": 1, "slots": [{"node_id": 1, "start_sample": 0,
                                                                     "length_samples": 1}] * 300})  # fmt: skip
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(too_many, type=SlotSchedule)


def test_channel_report_json_round_trip():
    rep = ChannelReport(1, 0, 4, 21.5, -3.0, 1200.0, 0.75, [1.0, 0.5], [0.0, -0.5])
    back = msgspec.json.decode(msgspec.json.encode(rep), type=ChannelReport)
    assert back == rep
    assert np.allclose(back.channel(), [1.0, 0.5 - 0.5j])


def test_schedule_slots_are_disjoint():
    sched = make_schedule([(1, 1000), (2, 0), (3, 500)], guard_samples=80)
    spans = [(s.start_sample, s.end_sample) for s in sched.slots]
    assert spans == [(80, 1080), (1160, 1160), (1240, 1740)]
    assert sched.window_samples == 1820
    with pytest.raises(LinkError, match="distinct nodes"):
        make_schedule([(1, 10), (1, 10)], 0)
    assert sched.grant_for(9) is None
