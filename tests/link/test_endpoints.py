"""Both ends of a transfer without radios or clocks: frames cut by the link layer, lost on purpose, NACKs and
acknowledgements carried by hand as the control plane would, time given as numbers (a fake clock)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import LinkError
from testbed.link.endpoints import SILENT_PASS_FACTOR, Inbound, Outbound, RepairTiming, Verdict
from testbed.link.messages import Nack, SlotGrant, make_nack
from testbed.link.placement import Job
from testbed.link.segment import BROADCAST, DIGEST_BYTES, HEADER_BYTES, parse, segment

QUIET = 1000
RATE_HZ = 1e6  # so QUIET samples are 1 ms
TIMING = RepairTiming(quiet_samples=QUIET, sample_rate_hz=RATE_HZ, max_passes=8)


def outbound(data: bytes, dsts: list[int], expect: set[str], timing: RepairTiming = TIMING) -> Outbound:
    return Outbound(data, src=0, dsts=dsts, object_id=7, frame_payload_bytes=100, timing=timing, expect=expect)


def inbound(node: int = 1, since: int = 0, blind: bool = True) -> Inbound:
    return Inbound(node, src=0, object_id=7, timing=TIMING, since_sample=since, nack_blind=blind)


def deliver(job: Job, end: Inbound, keep: np.ndarray, sample: int) -> None:
    """Offer the job's frames whose entry in ``keep`` is True, as heard at ``sample``."""
    for (_, payload), ok in zip(job.frames, keep, strict=True):
        if ok:
            end.offer(*parse(payload), sample)


def bitmap(count: int, missing: list[int]) -> Nack:
    mask = np.zeros(count, bool)
    mask[missing] = True
    return make_nack(7, mask)


def test_receiver_nacks_only_after_the_quiet_time_naming_exactly_what_is_missing() -> None:
    out = outbound(bytes(range(256)) * 4, [1], {"ue"})
    job = out.next_job(1, "qpsk-1/2", 0, 0.0)
    assert job is not None and [seq for seq, _ in job.frames] == list(range(out.count)) == list(range(15))
    end = inbound(since=0)
    keep = np.ones(out.count, bool)
    keep[[2, 3, 11]] = False
    deliver(job, end, keep, 5000)
    assert end.nack_due(5000 + QUIET - 1) is None  # one sample short of the quiet time
    nack = end.nack_due(5000 + QUIET)
    assert nack == bitmap(15, [2, 3, 11]) and end.nacks_sent == 1
    assert end.nack_due(5000 + 2 * QUIET - 1) is None  # the next one is a whole quiet time later
    assert end.nack_due(5000 + 2 * QUIET) == nack and end.nacks_sent == 2
    deliver(job, end, ~keep, 9000)
    assert end.nack_due(10**9) is None and end.ack_due() == bitmap(15, []) and end.ack_due() is None
    deliver(job, end, keep, 9500)  # the sender is still sending: the acknowledgement may be lost
    assert end.ack_due() == bitmap(15, [])
    assert end.deliver() == bytes(range(256)) * 4


@pytest.mark.parametrize("blind", [True, False])
def test_before_any_frame_only_a_blind_receiver_nacks_for_everything(blind: bool) -> None:
    end = inbound(since=100, blind=blind)
    assert end.nack_due(100 + QUIET - 1) is None
    nack = end.nack_due(100 + QUIET)
    assert nack == (Nack(7, 0, b"") if blind else None)


def test_gathered_nacks_are_resent_once_as_their_union() -> None:
    timing = RepairTiming(QUIET, RATE_HZ, max_passes=8, gather_s=0.5)
    data = bytes(range(256)) * 5
    out = outbound(data, [1, 2, 3], {"a", "b", "c"}, timing)
    frames = segment(data, object_id=7, src=0, dst=BROADCAST, frame_payload_bytes=100)
    first = out.next_job(1, "bpsk-1/2", 0, 0.0, SlotGrant(0, 10, 100_000))
    assert first is not None and first.slot == SlotGrant(0, 10, 100_000) and len(first.frames) == out.count == 18
    out.add_nack("a", bitmap(18, [0]), 0.01)  # predates the end of the pass: ignored
    out.on_air(1, 5000, 0.02)
    assert out.next_job(2, "bpsk-1/2", 5000, 0.02) is None
    out.add_nack("a", bitmap(18, [1, 4, 9]), 1.0)
    out.add_nack("b", bitmap(18, [4, 15]), 1.1)
    out.add_nack("stranger", Nack(7, 0, b""), 1.1)  # not an expected receiver
    out.add_nack("c", Nack(8, 0, b""), 1.1)  # another object
    out.add_nack("c", Nack(7, 18, b"\xff"), 1.1)  # a bitmap of the wrong length
    assert out.next_job(2, "bpsk-1/2", 10**6, 1.49) is None  # c has not answered: still gathering
    job = out.next_job(2, "bpsk-1/2", 10**6, 1.5)
    assert job is not None and [seq for seq, _ in job.frames] == [1, 4, 9, 15]
    assert [payload for _, payload in job.frames] == [frames[i] for i in (1, 4, 9, 15)]
    assert out.passes == 2 and out.frames_sent == 22
    assert out.next_job(3, "bpsk-1/2", 10**6, 1.5) is None  # the union goes out once


def test_gathering_ends_as_soon_as_every_receiver_has_answered() -> None:
    timing = RepairTiming(QUIET, RATE_HZ, max_passes=8, gather_s=60.0)
    out = outbound(bytes(700), [1, 2], {"a", "b"}, timing)
    out.next_job(1, "qpsk-1/2", 0, 0.0)
    out.on_air(1, 100, 0.0)
    out.add_nack("a", bitmap(out.count, [3]), 1.0)
    assert out.next_job(2, "qpsk-1/2", 200, 1.0) is None
    out.add_nack("b", bitmap(out.count, []), 1.0)  # b acknowledges: a's NACK is all that is left to wait for
    job = out.next_job(2, "qpsk-1/2", 200, 1.0)
    assert job is not None and [seq for seq, _ in job.frames] == [3]


def test_a_pass_answered_by_silence_is_resent_whole_after_the_silent_time_in_samples_and_seconds() -> None:
    data = bytes(300)
    out = outbound(data, [0], {"bs"})
    out.next_job(1, "qpsk-1/2", 0, 0.0)
    out.on_air(1, 0, 0.0)
    silent = SILENT_PASS_FACTOR * QUIET
    silent_s = silent / RATE_HZ
    assert out.next_job(2, "qpsk-1/2", silent - 1, 10.0) is None  # samples short
    assert out.next_job(2, "qpsk-1/2", silent, silent_s / 2) is None  # seconds short (a fast clock)
    again = out.next_job(2, "qpsk-1/2", silent, silent_s)
    assert again is not None and out.passes == 2
    assert [payload for _, payload in again.frames] == segment(data, object_id=7, src=0, dst=0,
                                                               frame_payload_bytes=100)  # fmt: skip
    out.on_air(2, silent, silent_s)
    out.add_nack("bs", bitmap(out.count, []), silent_s)  # nothing missing: an acknowledgement
    assert out.delivered and out.done and not out.gave_up
    assert out.next_job(3, "qpsk-1/2", 100 * silent, 100.0) is None


def test_sender_gives_up_after_max_passes() -> None:
    timing = RepairTiming(QUIET, RATE_HZ, max_passes=2)
    out = outbound(bytes(300), [1], {"ue"}, timing)
    for job_id in (1, 2):
        job = out.next_job(job_id, "qpsk-1/2", job_id * QUIET, float(job_id))
        assert job is not None and len(job.frames) == out.count
        out.on_air(job_id, job_id * QUIET, float(job_id))
        out.add_nack("ue", Nack(7, 0, b""), float(job_id))
    assert out.exhausted and not out.gave_up
    assert out.next_job(3, "qpsk-1/2", 10 * QUIET, 10.0) is None
    assert out.gave_up and out.done and not out.delivered and out.passes == 2 and out.frames_sent == 2 * out.count


def test_sender_stops_at_max_frames_sent_and_gives_up_when_more_are_due() -> None:
    """A UE's energy budget as a frame limit: the first pass fits, the repair gets what is left, the next
    repair is not sent (on the old code every repair went out: no limit)."""
    out = outbound(bytes(300), [1], {"ue"})
    out.max_frames_sent = out.count + 1
    job = out.next_job(1, "qpsk-1/2", 0, 0.0)
    assert job is not None and len(job.frames) == out.count
    out.on_air(1, 0, 0.0)
    out.add_nack("ue", bitmap(out.count, [0, 2]), 0.0)
    repair = out.next_job(2, "qpsk-1/2", QUIET, 1.0)
    assert repair is not None and [seq for seq, _ in repair.frames] == [0]  # one frame left in the budget
    assert out.next_job(3, "qpsk-1/2", QUIET, 1.0) is None  # the rest of the pass is past the budget
    assert out.gave_up and out.budget_spent and out.done and not out.delivered
    assert out.frames_sent == out.max_frames_sent


def test_a_pass_in_several_jobs_is_on_air_only_after_its_last_job() -> None:
    out = outbound(bytes(700), [1], {"ue"})
    probe = out.next_job(1, "bpsk-1/2", 0, 0.0, max_frames=1)
    rest = out.next_job(2, "64qam-3/4", 0, 0.0)
    assert probe is not None and rest is not None and out.passes == 1
    assert [s for s, _ in probe.frames] == [0] and [s for s, _ in rest.frames] == list(range(1, out.count))
    assert out.job_ids == (1, 2) and out.next_job(3, "64qam-3/4", 0, 0.0) is None
    out.on_air(1, 50, 0.0)
    out.add_nack("ue", bitmap(out.count, [0]), 0.0)  # the pass is not on air yet: ignored
    out.on_air(2, 500, 0.0)
    assert out.job_ids == ()
    assert out.next_job(3, "64qam-3/4", 500 + 3 * QUIET - 1, 1.0) is None  # no NACK counted: waits for silence
    out.add_nack("ue", bitmap(out.count, [0]), 1.0)
    job = out.next_job(3, "64qam-3/4", 500, 1.0)
    assert job is not None and [s for s, _ in job.frames] == [0]


def test_lossy_broadcast_repairs_to_exact_bytes_at_every_receiver(rng: np.random.Generator) -> None:
    data = rng.bytes(2000)
    out = outbound(data, [1, 2], {"ue-1", "ue-2"})
    ends = {"ue-1": inbound(1), "ue-2": inbound(2)}
    cursor, job_id = 0, 1
    job = out.next_job(job_id, "qpsk-1/2", cursor, 0.0)
    while job is not None:
        for end in ends.values():
            deliver(job, end, rng.random(len(job.frames)) > 0.3, cursor)
        out.on_air(job.job_id, cursor, cursor / RATE_HZ)
        cursor += QUIET  # the receivers hear nothing more for a quiet time: they NACK (or acknowledge)
        for name, end in ends.items():
            nack = end.ack_due() or end.nack_due(cursor)
            if nack is not None:
                out.add_nack(name, nack, cursor / RATE_HZ)
        job_id += 1
        job = out.next_job(job_id, "qpsk-1/2", cursor, cursor / RATE_HZ)
        assert job is None or 0 < len(job.frames) <= out.count
    assert out.delivered and out.passes > 1
    assert all(end.deliver() == data for end in ends.values())


def test_timing_is_checked() -> None:
    with pytest.raises(LinkError, match="max_passes >= 1"):
        RepairTiming(QUIET, RATE_HZ, max_passes=0)


# --- reassembly ---------------------------------------------------------------------------------------------
def _offer_all(end: Inbound, frames: list[bytes]) -> list[Verdict]:
    return [end.offer(*parse(f), 0) for f in frames]


def _receiver(node: int, src: int, object_id: int) -> Inbound:
    return Inbound(node, src=src, object_id=object_id, timing=TIMING)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), frame_bytes=st.integers(HEADER_BYTES + 1, 700), seed=st.integers(0, 2**32 - 1))
def test_any_order_reassembles_exactly(data: bytes, frame_bytes: int, seed: int) -> None:
    frames = segment(data, object_id=9, src=1, dst=BROADCAST, frame_payload_bytes=frame_bytes)
    assert all(len(f) <= frame_bytes for f in frames)
    assert sum(len(f) - HEADER_BYTES for f in frames) == len(data) + DIGEST_BYTES
    end = _receiver(4, 1, 9)
    order = np.random.default_rng(seed).permutation(len(frames))
    assert _offer_all(end, [frames[i] for i in order]) == [Verdict.NEW] * len(frames)
    assert end.deliver() == data


def test_duplicates_and_foreign_frames_are_never_merged(rng: np.random.Generator) -> None:
    data = rng.bytes(5000)
    frames = segment(data, object_id=3, src=1, dst=2, frame_payload_bytes=600)
    other_object = segment(rng.bytes(5000), object_id=4, src=1, dst=2, frame_payload_bytes=600)
    other_node = segment(rng.bytes(5000), object_id=3, src=7, dst=2, frame_payload_bytes=600)
    other_dst = segment(rng.bytes(5000), object_id=3, src=1, dst=5, frame_payload_bytes=600)
    end = _receiver(2, 1, 3)
    assert end.offer(*parse(frames[0]), 0) is Verdict.NEW
    assert end.offer(*parse(frames[0]), 0) is Verdict.DUPLICATE
    for foreign in (other_object, other_node, other_dst):
        assert set(_offer_all(end, foreign)) == {Verdict.FOREIGN}
    # same object id and sender, different geometry (another size): inconsistent, ignored
    regrown = segment(rng.bytes(7000), object_id=3, src=1, dst=2, frame_payload_bytes=600)
    assert set(_offer_all(end, regrown[1:])) == {Verdict.INCONSISTENT}
    _offer_all(end, frames[1:])
    assert end.deliver() == data
    assert end.verdicts[Verdict.FOREIGN] == 3 * len(frames)


def test_foreign_frames_do_not_restart_the_quiet_timer(rng: np.random.Generator) -> None:
    frames = segment(rng.bytes(500), object_id=7, src=0, dst=1, frame_payload_bytes=100)
    end = inbound(since=0)
    end.offer(*parse(frames[0]), 0)
    end.offer(*parse(segment(b"x", object_id=8, src=0, dst=1, frame_payload_bytes=100)[0]), QUIET - 1)
    assert end.nack_due(QUIET) == bitmap(len(frames), list(range(1, len(frames))))


def test_duplicate_with_other_content_does_not_overwrite(rng: np.random.Generator) -> None:
    data = rng.bytes(2000)
    frames = segment(data, object_id=1, src=0, dst=1, frame_payload_bytes=500)
    end = _receiver(1, 0, 1)
    _offer_all(end, frames)
    head, chunk = parse(frames[1])
    assert end.offer(head, bytes(len(chunk)), 0) is Verdict.DUPLICATE
    assert end.deliver() == data


def test_incomplete_object_names_missing_frames_and_delivers_nothing(rng: np.random.Generator) -> None:
    frames = segment(rng.bytes(4000), object_id=5, src=0, dst=1, frame_payload_bytes=300)
    end = _receiver(1, 0, 5)
    with pytest.raises(LinkError, match="no frame of object 5"):
        end.deliver()
    _offer_all(end, [f for i, f in enumerate(frames) if i not in (2, 3, 4, 9)])
    with pytest.raises(LinkError, match=r"missing 4 of 15 frames \(2-4, 9\); nothing delivered"):
        end.deliver()


def test_corrupted_chunk_that_passed_frame_checks_fails_sha256(rng: np.random.Generator) -> None:
    data = rng.bytes(3000)
    frames = segment(data, object_id=5, src=0, dst=1, frame_payload_bytes=1000)
    bad = bytearray(frames[1])
    bad[HEADER_BYTES + 17] ^= 0x01
    end = _receiver(1, 0, 5)
    _offer_all(end, [frames[0], bytes(bad), *frames[2:]])
    assert end.complete
    with pytest.raises(LinkError, match="SHA-256"):
        end.deliver()
    assert hashlib.sha256(data).digest() == frames[-1][-DIGEST_BYTES:]
