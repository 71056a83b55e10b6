"""Both ends of a daemon transfer without radios: frames cut from the link layer, lost on purpose, NACKs
and acknowledgements carried by hand as the control plane would."""

from __future__ import annotations

import numpy as np
import pytest

from testbed.link.messages import Nack, SlotGrant
from testbed.link.segment import parse
from testbed.node.transfers import SILENT_PASS_FACTOR, Inbound, Outbound

QUIET = 1000
RATE_HZ = 1e6


def outbound(data: bytes, dsts: list[int], expect: set[str], max_passes: int = 8) -> Outbound:
    return Outbound(data, src=0, dsts=dsts, object_id=7, frame_payload_bytes=100, max_passes=max_passes,
                    expect=expect)  # fmt: skip


def deliver(job, inbound: Inbound, keep: np.ndarray, sample: int) -> None:
    """Offer the job's frames whose entry in ``keep`` is True, as heard at ``sample``."""
    for (_, payload), ok in zip(job.frames, keep, strict=True):
        if ok:
            head, chunk = parse(payload)
            inbound.offer(head, chunk, sample)


def test_lossy_broadcast_repairs_to_exact_bytes_at_every_receiver(rng: np.random.Generator) -> None:
    data = rng.bytes(2000)
    out = outbound(data, [1, 2], {"ue-1", "ue-2"})
    ins = {name: Inbound(node, src=0, object_id=7, since_sample=0, nack_blind=True)
           for name, node in (("ue-1", 1), ("ue-2", 2))}  # fmt: skip
    job, cursor = out.first_job(1, "qpsk-1/2"), 0
    for job_id in range(2, 40):
        for inbound in ins.values():
            deliver(job, inbound, rng.random(len(job.frames)) > 0.3, cursor)
        out.on_air(job.job_id, cursor)
        cursor += QUIET  # the receivers hear nothing more for a quiet time: they NACK (or acknowledge)
        for name, inbound in ins.items():
            nack = inbound.ack_due() or inbound.nack_due(cursor, QUIET)
            if nack is not None:
                out.add_nack(name, nack)
        if out.delivered:
            break
        job = out.next_job(job_id, "qpsk-1/2", cursor, QUIET, RATE_HZ, gather_s=0.0)
        assert job is not None and 0 < len(job.frames) <= out.sender.count
    assert out.delivered and out.passes > 1
    assert all(inbound.deliver() == data for inbound in ins.values())


def test_nacks_before_the_pass_is_on_air_are_ignored_and_union_is_resent_once() -> None:
    out = outbound(bytes(500), [1, 2], {"a", "b"})
    first = out.first_job(1, "bpsk-1/2", SlotGrant(1, 10, 100))
    assert first.slot == SlotGrant(1, 10, 100) and len(first.frames) == out.sender.count
    count = out.sender.count
    early = Nack(7, count, np.packbits(np.arange(count) == 0, bitorder="little").tobytes())
    out.add_nack("a", early)  # predates the end of the pass
    out.on_air(1, 5000)
    assert out.next_job(2, "bpsk-1/2", 5000, QUIET, RATE_HZ, gather_s=0.0) is None
    miss_a = np.arange(count) % 2 == 0
    miss_b = np.arange(count) < 2
    out.add_nack("a", Nack(7, count, np.packbits(miss_a, bitorder="little").tobytes()))
    out.add_nack("b", Nack(7, count, np.packbits(miss_b, bitorder="little").tobytes()))
    out.add_nack("stranger", Nack(7, 0, b""))  # not an expected receiver
    job = out.next_job(2, "bpsk-1/2", 5000, QUIET, RATE_HZ, gather_s=0.0)
    assert job is not None
    assert [seq for seq, _ in job.frames] == np.flatnonzero(miss_a | miss_b).tolist()


def test_silent_pass_is_resent_whole_but_not_once_acknowledged() -> None:
    out = outbound(bytes(300), [0], {"bs"})
    out.first_job(1, "qpsk-1/2")
    out.on_air(1, 0)
    silent = SILENT_PASS_FACTOR * QUIET
    assert out.next_job(2, "qpsk-1/2", silent - 1, QUIET, RATE_HZ, gather_s=0.0) is None
    again = out.next_job(2, "qpsk-1/2", silent, QUIET, 1e12, gather_s=0.0)  # wall-time floor negligible here
    assert again is not None and len(again.frames) == out.sender.count and out.passes == 2
    out.on_air(2, silent)
    count = out.sender.count
    out.add_nack("bs", Nack(7, count, bytes((count + 7) // 8)))  # nothing missing: an acknowledgement
    assert out.delivered
    assert out.next_job(3, "qpsk-1/2", 10 * silent, QUIET, 1e12, gather_s=0.0) is None


def test_passes_are_bounded() -> None:
    out = outbound(bytes(300), [1], {"ue"}, max_passes=2)
    out.first_job(1, "qpsk-1/2")
    for job_id in (2, 3):
        out.on_air(job_id - 1, 0)
        out.add_nack("ue", Nack(7, 0, b""))
        job = out.next_job(job_id, "qpsk-1/2", 0, QUIET, RATE_HZ, gather_s=0.0)
        if job_id == 2:
            assert job is not None
    assert out.exhausted and job is None


@pytest.mark.parametrize("blind", [True, False])
def test_inbound_nacks_only_after_quiet_and_acknowledges_again_on_copies(blind: bool) -> None:
    out = outbound(bytes(range(256)) * 2, [1], {"ue"})
    job = out.first_job(1, "qpsk-1/2")
    inbound = Inbound(1, src=0, object_id=7, since_sample=100, nack_blind=blind)
    silence = inbound.nack_due(100 + QUIET, QUIET)
    assert (silence is not None and silence.frame_count == 0) if blind else silence is None
    keep = np.ones(len(job.frames), bool)
    keep[1] = False
    deliver(job, inbound, keep, 5000)
    assert inbound.nack_due(5000 + QUIET - 1, QUIET) is None
    nack = inbound.nack_due(5000 + QUIET, QUIET)
    assert nack is not None and nack.frame_count == len(job.frames)
    assert inbound.ack_due() is None
    deliver(job, inbound, ~keep, 9000)
    ack = inbound.ack_due()
    assert ack is not None and not any(ack.missing) and inbound.ack_due() is None
    deliver(job, inbound, keep, 9500)  # the sender is still sending: the acknowledgement may be lost
    assert inbound.ack_due() is not None
    assert inbound.deliver() == bytes(range(256)) * 2
