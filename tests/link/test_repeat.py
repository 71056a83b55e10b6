import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import LinkError
from testbed.link.messages import make_nack
from testbed.link.repeat import ObjectSender, Reassembler, Verdict
from testbed.link.segment import BROADCAST, DIGEST_BYTES, HEADER_BYTES, parse, segment


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


def test_sender_resends_the_union_of_nacks_and_ignores_other_objects():
    tx = ObjectSender(bytes(5000), src=0, dsts=[1, 2], object_id=7, frame_payload_bytes=526)
    assert tx.count == 11 and tx.take(4).tolist() == [0, 1, 2, 3] and not tx.pass_done
    assert tx.take(100).tolist() == list(range(4, 11)) and tx.pass_done
    a, b = np.zeros(11, bool), np.zeros(11, bool)
    a[[1, 5]] = True
    b[[5, 9]] = True
    foreign = make_nack(8, np.ones(11, bool))
    assert tx.next_pass([make_nack(7, a), make_nack(7, b), foreign])
    assert tx.take(10).tolist() == [1, 5, 9]
    assert tx.next_pass([make_nack(7, np.zeros(0, bool))])  # heard nothing: everything again
    assert tx.take(100).size == 11
    assert not tx.next_pass([])


def test_receiver_nack_names_exactly_what_is_missing(rng):
    tx = ObjectSender(rng.bytes(3000), src=0, dsts=[1], object_id=2, frame_payload_bytes=526)
    r = Reassembler(1, src=0, object_id=2)
    assert r.nack().frame_count == 0
    _offer_all(r, [f for i, f in enumerate(tx.frames) if i not in (0, 4)])
    assert tx.next_pass([r.nack()]) and tx.take(10).tolist() == [0, 4]
