"""One object crossing the air between two daemons: the sending end (``Outbound``) and a receiving end
(``Inbound``). They wrap the link layer's two ARQ halves (testbed/link/repeat.py) with what a daemon adds:
the NACKs travel over the control plane, and time is the radio's sample clock.

Rules (docs/nodes.md, "Transfers"):
- A receiver that misses frames NACKs after ``quiet_samples`` with no new frame of the object (so a NACK
  describes the state after a pass, never one still on the air), and again every ``quiet_samples`` while
  frames are still missing.
- A sender ignores NACKs that arrive before its current pass is fully on air (they predate it), gathers
  the rest for ``gather_s`` after the first one, then resends their union (one copy serves every receiver).
- A NACK with nothing missing is an acknowledgement: the receiver verified the object (SHA-256). A
  receiver acknowledges once, and again if copies keep arriving (its acknowledgement may have been lost).
- A sender whose pass drew neither NACK nor every expected acknowledgement for ``3 * quiet_samples`` (and
  as long in wall time) resends it all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from testbed.link.messages import Nack, SlotGrant
from testbed.link.repeat import ObjectSender, Reassembler, Verdict
from testbed.link.segment import SegmentHeader
from testbed.node.pump import Job

#: Silence after a pass, in multiples of the receivers' NACK quiet time, before a sender resends it all.
SILENT_PASS_FACTOR = 3


class Outbound:
    """The sending end: the frames, the pass on the air, the NACKs collected for the next pass."""

    def __init__(
        self, data: bytes, *, src: int, dsts: Sequence[int], object_id: int, frame_payload_bytes: int,
        max_passes: int, expect: set[str],
    ) -> None:  # fmt: skip
        self.sender = ObjectSender(data, src=src, dsts=dsts, object_id=object_id,
                                   frame_payload_bytes=frame_payload_bytes)  # fmt: skip
        self.object_id, self.max_passes = object_id, max_passes
        self.payload_bytes = len(data)
        self.passes = 0
        self.frames_sent = 0
        self.expect = set(expect)  # who must acknowledge (control-plane names of the receivers)
        self.acked: set[str] = set()
        self._job_id: int | None = None
        self._on_air_sample: int | None = None  # end of the current pass on the sample clock, once on air
        self._on_air_s = 0.0
        self._nacks: dict[str, Nack] = {}
        self._first_nack_s: float | None = None

    @property
    def job_id(self) -> int | None:
        """The pump job of the current pass (to cancel what it has not sent yet)."""
        return self._job_id

    @property
    def delivered(self) -> bool:
        """Every expected receiver acknowledged."""
        return self.expect <= self.acked

    def forget(self, who: str) -> None:
        """A receiver left (or was declared gone): stop waiting for it."""
        self.expect.discard(who)
        self._nacks.pop(who, None)

    @property
    def exhausted(self) -> bool:
        """True once ``max_passes`` passes were sent: the sender gives up on whoever still misses frames."""
        return self.passes >= self.max_passes

    def first_job(self, job_id: int, mcs: str, slot: SlotGrant | None = None) -> Job:
        """The first pass: every frame."""
        return self._job(job_id, self.sender.take(self.sender.count), mcs, slot)

    def on_air(self, job_id: int, end_sample: int) -> None:
        """The pump reports job ``job_id`` fully transmitted."""
        if job_id == self._job_id:
            self._on_air_sample, self._on_air_s = end_sample, time.monotonic()

    def add_nack(self, who: str, nack: Nack) -> None:
        """A receiver's NACK (or acknowledgement, when nothing is missing)."""
        if nack.object_id != self.object_id or nack.frame_count not in (0, self.sender.count):
            return
        if nack.frame_count and not any(nack.missing):
            self.acked.add(who)
            self._nacks.pop(who, None)
            return
        if self._on_air_sample is None or who not in self.expect:
            return  # it describes an earlier state than the pass still on the air
        self._nacks[who] = nack
        if self._first_nack_s is None:
            self._first_nack_s = time.monotonic()

    def next_job(self, job_id: int, mcs: str, cursor: int, quiet_samples: int, sample_rate_hz: float,
                 gather_s: float, slot: SlotGrant | None = None) -> Job | None:  # fmt: skip
        """The next pass if one is due now (NACKs gathered, or a pass answered by silence), else None."""
        if self._on_air_sample is None or self.exhausted:
            return None
        now = time.monotonic()
        if self._nacks:
            if self._first_nack_s is not None and now - self._first_nack_s < gather_s:
                return None
            nacks = list(self._nacks.values())
        else:
            silent = SILENT_PASS_FACTOR * quiet_samples
            if (
                self.delivered
                or cursor - self._on_air_sample < silent
                or now - self._on_air_s < silent / sample_rate_hz
            ):
                return None
            nacks = [Nack(self.object_id, 0, b"")]  # no answer at all: send everything again
        if not self.sender.next_pass(nacks):
            return None
        return self._job(job_id, self.sender.take(self.sender.count), mcs, slot)

    def _job(self, job_id: int, seqs: np.ndarray, mcs: str, slot: SlotGrant | None) -> Job:
        self.passes += 1
        self.frames_sent += len(seqs)
        self._job_id, self._on_air_sample = job_id, None
        self._nacks, self._first_nack_s = {}, None
        return Job(job_id, [(int(i), self.sender.frames[int(i)]) for i in seqs], mcs, slot)


class Inbound:
    """The receiving end: checked frames in, NACKs out when the sender has gone quiet, verified bytes out.

    since_sample : when this node started to expect the object (the quiet timer's start before any frame).
    nack_blind : NACK even before any frame arrived (the frame count is then unknown: "send everything").
    """

    def __init__(self, node_id: int, *, src: int, object_id: int, since_sample: int, nack_blind: bool) -> None:
        self.reassembler = Reassembler(node_id, src=src, object_id=object_id)
        self.src, self.object_id = src, object_id
        self.nack_blind = nack_blind
        self.nacks_sent = 0
        self.acked = False
        self._quiet_from = since_sample

    def offer(self, head: SegmentHeader, chunk: bytes, start_sample: int) -> Verdict:
        was_complete = self.complete
        verdict = self.reassembler.offer(head, chunk)
        if verdict in (Verdict.NEW, Verdict.DUPLICATE):
            self._quiet_from = max(self._quiet_from, start_sample)
        if was_complete and verdict is Verdict.DUPLICATE:
            self.acked = False  # the sender is still sending: our acknowledgement may have been lost
        return verdict

    @property
    def complete(self) -> bool:
        return self.reassembler.complete

    def nack_due(self, cursor: int, quiet_samples: int) -> Nack | None:
        """The NACK to send now, if the sender has been quiet long enough and frames are missing."""
        if self.complete or (self.reassembler.count is None and not self.nack_blind):
            return None
        if cursor - self._quiet_from < quiet_samples:
            return None
        self._quiet_from = cursor
        self.nacks_sent += 1
        return self.reassembler.nack()

    def ack_due(self) -> Nack | None:
        """The acknowledgement (a NACK with nothing missing) to send now, once the object is complete."""
        if not self.complete or self.acked:
            return None
        self.acked = True
        return self.reassembler.nack()

    def deliver(self) -> bytes:
        """The verified object (LinkError if incomplete or the SHA-256 does not match)."""
        return self.reassembler.deliver()
