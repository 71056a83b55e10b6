"""The two ends of one object's transfer, without I/O: ``Outbound`` (frames, passes, NACK intake, when to
repair) and ``Inbound`` (checked frame intake, reassembly, when to NACK or acknowledge, verified delivery).

Nothing here reads a clock: every call that depends on time takes the sample clock (``now_sample``, the
node's receive clock) and, where a wall-clock floor applies, seconds (``now_s``, monotonic in a daemon,
virtual in the in-process driver). The daemons (testbed/node/bs.py, ue.py) carry the NACKs over the control
plane and the frames through the radio pump; ``arq.run_transfer`` carries both in-process. One set of rules
(docs/link.md, "ARQ and broadcast repair"):

- A receiver missing frames NACKs after ``quiet_samples`` with no new frame of the object (so a NACK
  describes the state after a pass, never one still on the air), and again every ``quiet_samples`` while
  frames are still missing. ``nack_blind``: it NACKs even before any frame arrived ("send everything").
- A NACK with nothing missing is an acknowledgement: the receiver verified the object (SHA-256). A receiver
  acknowledges once, and again if copies keep arriving (its acknowledgement may have been lost).
- A sender ignores NACKs that arrive before its current pass is fully on air (they predate it), gathers
  the rest for ``gather_s`` after the first one (or until every receiver still expected has answered),
  then resends their union (one copy serves every receiver).
- A sender whose pass drew neither NACK nor every expected acknowledgement for ``SILENT_PASS_FACTOR *
  quiet_samples`` (and as long in seconds) resends it all. After ``max_passes`` passes it gives up.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from testbed.errors import LinkError
from testbed.link.messages import Nack, SlotGrant, make_nack, nack_missing
from testbed.link.placement import Job
from testbed.link.segment import BROADCAST, SegmentHeader, describe_ranges, segment

#: Silence after a pass, in multiples of the receivers' NACK quiet time, before a sender resends it all.
SILENT_PASS_FACTOR = 3


@dataclass(frozen=True)
class RepairTiming:
    """The timers of both ends; every node of an air uses the same values.

    quiet_samples : silence from the sender after which a receiver NACKs (a TDMA sender's slots are a cycle
        apart, so at least one cycle plus some slack).
    sample_rate_hz : converts the silent-pass time to its floor in seconds.
    max_passes : passes of one object (the first included) before the sender gives up.
    gather_s : how long a sender collects NACKs after the first before it repairs.
    """

    quiet_samples: int
    sample_rate_hz: float
    max_passes: int
    gather_s: float = 0.0

    def __post_init__(self) -> None:
        if self.quiet_samples < 1 or self.sample_rate_hz <= 0 or self.max_passes < 1 or self.gather_s < 0:
            raise LinkError(
                f"RepairTiming needs quiet_samples >= 1, sample_rate_hz > 0, max_passes >= 1, gather_s >= 0; got "
                f"{self.quiet_samples}, {self.sample_rate_hz}, {self.max_passes}, {self.gather_s}"
            )


class Outbound:
    """The sending end: the frames of one object, the pass in progress, the NACKs collected for the next.

    expect : who must acknowledge (names the caller uses for receivers in ``add_nack``).
    max_frames_sent : frames the sender may put on the air in all (a UE's energy budget; None: no limit); a
        job due past it is not sent, and the transfer gives up (``budget_spent``).
    """

    def __init__(
        self, data: bytes, *, src: int, dsts: Sequence[int], object_id: int, frame_payload_bytes: int,
        timing: RepairTiming, expect: Collection[str],
    ) -> None:  # fmt: skip
        self.src, self.dsts, self.object_id, self.timing = src, tuple(dsts), object_id, timing
        dst = self.dsts[0] if len(self.dsts) == 1 else BROADCAST
        self.frames = segment(data, object_id=object_id, src=src, dst=dst, frame_payload_bytes=frame_payload_bytes)
        self.payload_bytes = len(data)
        self.passes = 0  # passes started
        self.frames_sent = 0
        self.gave_up = False  # a further pass was due after max_passes, or past max_frames_sent
        self.max_frames_sent: int | None = None
        self.budget_spent = False  # gave up because frames were due past max_frames_sent
        self.expect = set(expect)
        self.acked: set[str] = set()
        self._pending = np.arange(len(self.frames))  # sequence numbers of the current pass
        self._cursor = 0  # how many of them were handed out in jobs
        self._jobs: set[int] = set()  # jobs of the current pass not yet fully on air
        self._on_air_sample: int | None = None  # end of the current pass on the sample clock, once on air
        self._on_air_s = 0.0
        self._missing: dict[str, np.ndarray] = {}  # receiver -> frames its NACK asks for
        self._first_nack_s: float | None = None

    @property
    def count(self) -> int:
        return len(self.frames)

    @property
    def job_ids(self) -> tuple[int, ...]:
        """The jobs of the current pass not yet on air (to cancel what they have not sent)."""
        return tuple(sorted(self._jobs))

    @property
    def delivered(self) -> bool:
        """Every expected receiver acknowledged."""
        return self.expect <= self.acked

    @property
    def done(self) -> bool:
        """Delivered, or given up after ``max_passes``."""
        return self.delivered or self.gave_up

    @property
    def exhausted(self) -> bool:
        """True once ``max_passes`` passes were started."""
        return self.passes >= self.timing.max_passes

    def forget(self, who: str) -> None:
        """A receiver left (or was declared gone): stop waiting for it."""
        self.expect.discard(who)
        self._missing.pop(who, None)

    def on_air(self, job_id: int, end_sample: int, now_s: float) -> None:
        """Job ``job_id`` is fully transmitted, its last burst ending at ``end_sample``."""
        if job_id not in self._jobs:
            return
        self._jobs.discard(job_id)
        if not self._jobs and self._cursor >= self._pending.size:
            self._on_air_sample, self._on_air_s = end_sample, now_s

    def add_nack(self, who: str, nack: Nack, now_s: float) -> None:
        """A receiver's NACK (an acknowledgement when it names frames and misses none)."""
        if nack.object_id != self.object_id or nack.frame_count not in (0, self.count):
            return
        try:
            missing = nack_missing(nack, self.count)
        except LinkError:
            return  # a malformed bitmap: the silent-pass rule still covers this receiver
        if nack.frame_count and not missing.size:
            self.acked.add(who)
            self._missing.pop(who, None)
            return
        if self._on_air_sample is None or who not in self.expect:
            return  # it describes an earlier state than the pass still on the air
        self._missing[who] = missing
        if self._first_nack_s is None:
            self._first_nack_s = now_s

    def next_job(
        self, job_id: int, mcs: str, now_sample: int, now_s: float, slot: SlotGrant | None = None,
        max_frames: int | None = None,
    ) -> Job | None:  # fmt: skip
        """The next frames to send now: the rest of the current pass (at most ``max_frames``), or the first
        frames of a repair pass if one is due (NACKs gathered, or a pass answered by silence); else None."""
        if self._cursor >= self._pending.size and not self._repair_due(now_sample, now_s):
            return None
        if self.max_frames_sent is not None:
            room = self.max_frames_sent - self.frames_sent
            if room <= 0:
                self.gave_up = self.budget_spent = True
                return None
            max_frames = room if max_frames is None else min(max_frames, room)
        if self._cursor == 0:
            self.passes += 1
        stop = self._pending.size if max_frames is None else self._cursor + max(1, max_frames)
        batch = self._pending[self._cursor : stop]
        self._cursor += batch.size
        self.frames_sent += batch.size
        self._jobs.add(job_id)
        return Job(job_id, [(int(i), self.frames[int(i)]) for i in batch], mcs, slot)

    def _repair_due(self, now_sample: int, now_s: float) -> bool:
        """Start the next pass if it is due now; True if it did (its frames are then pending)."""
        if self._on_air_sample is None or self.done:
            return False
        if self._missing:
            answered = set(self._missing) | self.acked
            if not self.expect <= answered and self._first_nack_s is not None:
                if now_s - self._first_nack_s < self.timing.gather_s:
                    return False
            pending = np.unique(np.concatenate(list(self._missing.values())))
        else:
            silent = SILENT_PASS_FACTOR * self.timing.quiet_samples
            silent_s = silent / self.timing.sample_rate_hz
            if now_sample - self._on_air_sample < silent or now_s - self._on_air_s < silent_s:
                return False
            pending = np.arange(self.count)  # no answer at all: send everything again
        if self.exhausted:
            self.gave_up = True
            return False
        self._pending, self._cursor, self._on_air_sample = pending, 0, None
        self._missing, self._first_nack_s = {}, None
        return True


class Verdict(enum.Enum):
    """What a receiver did with one frame."""

    NEW = "new"
    DUPLICATE = "duplicate"
    FOREIGN = "foreign"  # another object, sender or addressee
    INCONSISTENT = "inconsistent"  # right object, but geometry differs from the first frame seen


class Inbound:
    """The receiving end of one object from one sender at one node: checked frames in, NACKs out when the
    sender has gone quiet, only a verified whole delivered.

    node_id : the receiving node (frames addressed to another node are foreign; BROADCAST is accepted).
    src, object_id : the transfer this end belongs to (known from the control plane).
    since_sample : when this node started to expect the object (the quiet timer's start before any frame).
    nack_blind : NACK even before any frame arrived (the frame count is then unknown: "send everything").
    """

    def __init__(
        self, node_id: int, *, src: int, object_id: int, timing: RepairTiming, since_sample: int = 0,
        nack_blind: bool = False,
    ) -> None:  # fmt: skip
        self.node_id, self.src, self.object_id, self.timing = node_id, src, object_id, timing
        self.nack_blind = nack_blind
        self.nacks_sent = 0
        self.acked = False
        self.verdicts: dict[Verdict, int] = dict.fromkeys(Verdict, 0)
        self._quiet_from = since_sample
        self._geometry: tuple[int, int, int] | None = None  # (count, chunk_bytes, object_bytes)
        self._have = np.zeros(0, dtype=bool)
        self._missing = -1  # frames not yet kept (-1: the count is unknown until a frame arrives)
        self._stream = bytearray()

    def offer(self, head: SegmentHeader, chunk: bytes, heard_sample: int) -> Verdict:
        """Keep the chunk if it is new and belongs here (never overwrite one already kept); a frame of this
        object heard at ``heard_sample`` restarts the quiet timer."""
        was_complete = self.complete
        verdict = self._judge(head)
        if verdict is Verdict.NEW:
            start = head.seq * head.chunk_bytes
            self._stream[start : start + len(chunk)] = chunk
            self._have[head.seq] = True
            self._missing -= 1
        self.verdicts[verdict] += 1
        if verdict in (Verdict.NEW, Verdict.DUPLICATE):
            self._quiet_from = max(self._quiet_from, heard_sample)
        if was_complete and verdict is Verdict.DUPLICATE:
            self.acked = False  # the sender is still sending: our acknowledgement may have been lost
        return verdict

    def _judge(self, head: SegmentHeader) -> Verdict:
        if head.src != self.src or head.object_id != self.object_id or head.dst not in (self.node_id, BROADCAST):
            return Verdict.FOREIGN
        geometry = (head.count, head.chunk_bytes, head.object_bytes)
        if self._geometry is None:
            self._geometry = geometry
            self._have = np.zeros(head.count, dtype=bool)
            self._missing = head.count
            self._stream = bytearray(head.stream_bytes)
        elif geometry != self._geometry:
            return Verdict.INCONSISTENT
        return Verdict.DUPLICATE if self._have[head.seq] else Verdict.NEW

    @property
    def count(self) -> int | None:
        """Frames in the object, once any frame of it has arrived."""
        return None if self._geometry is None else self._geometry[0]

    @property
    def complete(self) -> bool:
        return self._missing == 0  # kept in step with _have: the timers ask this on every pass

    def missing(self) -> np.ndarray:
        """(k,) int64 sequence numbers not yet received (empty before the first frame: count unknown)."""
        return np.flatnonzero(~self._have)

    def nack(self) -> Nack:
        """What this receiver still misses, for the sender (frame_count 0: nothing heard yet)."""
        return make_nack(self.object_id, ~self._have)

    def nack_due(self, now_sample: int) -> Nack | None:
        """The NACK to send now, if the sender has been quiet long enough and frames are missing."""
        if self.complete or (self.count is None and not self.nack_blind):
            return None
        if now_sample - self._quiet_from < self.timing.quiet_samples:
            return None
        self._quiet_from = now_sample
        self.nacks_sent += 1
        return self.nack()

    def ack_due(self) -> Nack | None:
        """The acknowledgement (a NACK with nothing missing) to send now, once the object is complete."""
        if not self.complete or self.acked:
            return None
        self.acked = True
        return self.nack()

    def deliver(self) -> bytes:
        """The verified object. Raises LinkError naming what is missing or that the SHA-256 check failed."""
        if self._geometry is None:
            raise LinkError(f"node {self.node_id}: no frame of object {self.object_id} from node {self.src} arrived")
        if not self.complete:
            miss = self.missing()
            raise LinkError(
                f"node {self.node_id}: object {self.object_id} from node {self.src} is missing {miss.size} of "
                f"{self._geometry[0]} frames ({describe_ranges(miss)}); nothing delivered"
            )
        object_bytes = self._geometry[2]
        data, digest = bytes(self._stream[:object_bytes]), bytes(self._stream[object_bytes:])
        if hashlib.sha256(data).digest() != digest:
            raise LinkError(
                f"node {self.node_id}: object {self.object_id} from node {self.src} failed its SHA-256 check "
                "(a corrupted frame passed the frame CRC); nothing delivered, resend the object"
            )
        return data
