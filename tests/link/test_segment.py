import numpy as np
import pytest

from testbed.errors import LinkError
from testbed.link.segment import BROADCAST, HEADER_BYTES, SegmentHeader, describe_ranges, parse, segment


@pytest.mark.parametrize(
    "mangle, needle",
    [
        (lambda f: f[:10], "shorter than"),
        (lambda f: f[:-1], "carries"),
        (lambda f: f + b"x", "carries"),
        (lambda f: b"XX" + f[2:], "not a link segment"),
        (lambda f: f[:12] + (99).to_bytes(4, "big") + f[16:], "seq="),
        (lambda f: f[:16] + (2).to_bytes(4, "big") + f[20:], "inconsistent geometry"),
    ],
)
def test_truncated_or_garbled_frames_are_refused(rng, mangle, needle):
    frame = segment(rng.bytes(3000), object_id=1, src=0, dst=1, frame_payload_bytes=1000)[0]
    with pytest.raises(LinkError, match=needle):
        parse(mangle(frame))


def test_bad_arguments_are_refused():
    with pytest.raises(LinkError, match="frame_payload_bytes"):
        segment(b"abc", object_id=1, src=0, dst=1, frame_payload_bytes=HEADER_BYTES)
    with pytest.raises(LinkError, match="node ids"):
        segment(b"abc", object_id=1, src=BROADCAST, dst=1, frame_payload_bytes=100)
    with pytest.raises(LinkError, match="more than"):
        segment(bytes(2**16 * 2), object_id=1, src=0, dst=1, frame_payload_bytes=HEADER_BYTES + 1)


def test_header_round_trip_and_ranges():
    head = SegmentHeader(src=3, dst=BROADCAST, object_id=2**32 - 1, seq=0, count=1, chunk_bytes=40, object_bytes=8)
    assert parse(head.pack() + bytes(40))[0] == head
    assert describe_ranges(np.array([1, 2, 3, 7, 9, 10])) == "1-3, 7, 9-10"
    assert describe_ranges(np.array([], dtype=int)) == "none"
    assert describe_ranges(np.arange(0, 40, 2), limit=2) == "0, 2, ..."
