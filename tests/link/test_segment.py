import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import LinkError
from testbed.link.segment import (
    BROADCAST,
    DIGEST_BYTES,
    HEADER_BYTES,
    Reassembler,
    SegmentHeader,
    Verdict,
    describe_ranges,
    parse,
    segment,
)


def _offer_all(r: Reassembler, frames: list[bytes]) -> list[Verdict]:
    return [r.offer(*parse(f)) for f in frames]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), frame_bytes=st.integers(HEADER_BYTES + 1, 700), seed=st.integers(0, 2**32 - 1))
def test_any_order_reassembles_exactly(data, frame_bytes, seed):
    frames = segment(data, object_id=9, src=1, dst=BROADCAST, frame_payload_bytes=frame_bytes)
    assert all(len(f) <= frame_bytes for f in frames)
    assert sum(len(f) - HEADER_BYTES for f in frames) == len(data) + DIGEST_BYTES
    r = Reassembler(4, src=1, object_id=9)
    order = np.random.default_rng(seed).permutation(len(frames))
    assert _offer_all(r, [frames[i] for i in order]) == [Verdict.NEW] * len(frames)
    assert r.deliver() == data


def test_duplicates_and_foreign_frames_are_never_merged(rng):
    data = rng.bytes(5000)
    frames = segment(data, object_id=3, src=1, dst=2, frame_payload_bytes=600)
    other_object = segment(rng.bytes(5000), object_id=4, src=1, dst=2, frame_payload_bytes=600)
    other_node = segment(rng.bytes(5000), object_id=3, src=7, dst=2, frame_payload_bytes=600)
    other_dst = segment(rng.bytes(5000), object_id=3, src=1, dst=5, frame_payload_bytes=600)
    r = Reassembler(2, src=1, object_id=3)
    assert r.offer(*parse(frames[0])) is Verdict.NEW
    assert r.offer(*parse(frames[0])) is Verdict.DUPLICATE
    for foreign in (other_object, other_node, other_dst):
        assert set(_offer_all(r, foreign)) == {Verdict.FOREIGN}
    # same object id and sender, different geometry (another size): inconsistent, ignored
    regrown = segment(rng.bytes(7000), object_id=3, src=1, dst=2, frame_payload_bytes=600)
    assert set(_offer_all(r, regrown[1:])) == {Verdict.INCONSISTENT}
    _offer_all(r, frames[1:])
    assert r.deliver() == data
    assert r.verdicts[Verdict.FOREIGN] == 3 * len(frames)


def test_duplicate_with_other_content_does_not_overwrite(rng):
    data = rng.bytes(2000)
    frames = segment(data, object_id=1, src=0, dst=1, frame_payload_bytes=500)
    r = Reassembler(1, src=0, object_id=1)
    _offer_all(r, frames)
    head, chunk = parse(frames[1])
    assert r.offer(head, bytes(len(chunk))) is Verdict.DUPLICATE
    assert r.deliver() == data


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


def test_incomplete_object_names_missing_frames_and_delivers_nothing(rng):
    frames = segment(rng.bytes(4000), object_id=5, src=0, dst=1, frame_payload_bytes=300)
    r = Reassembler(1, src=0, object_id=5)
    with pytest.raises(LinkError, match="no frame of object 5"):
        r.deliver()
    _offer_all(r, [f for i, f in enumerate(frames) if i not in (2, 3, 4, 9)])
    with pytest.raises(LinkError, match=r"missing 4 of 15 frames \(2-4, 9\); nothing delivered"):
        r.deliver()


def test_corrupted_chunk_that_passed_frame_checks_fails_sha256(rng):
    data = rng.bytes(3000)
    frames = segment(data, object_id=5, src=0, dst=1, frame_payload_bytes=1000)
    bad = bytearray(frames[1])
    bad[HEADER_BYTES + 17] ^= 0x01
    r = Reassembler(1, src=0, object_id=5)
    _offer_all(r, [frames[0], bytes(bad), *frames[2:]])
    assert r.complete
    with pytest.raises(LinkError, match="SHA-256"):
        r.deliver()
    assert hashlib.sha256(data).digest() == frames[-1][-DIGEST_BYTES:]


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
