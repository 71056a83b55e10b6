"""The two halves of selective repeat for one object: ``ObjectSender`` (frames, the pass in progress, NACK
intake) and ``Reassembler`` (checked frame intake, NACK, verified delivery). ``arq.run_transfer`` drives
both in one process; node daemons run each half in its own process and carry the NACKs over the control
plane.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence

import numpy as np

from testbed.errors import LinkError
from testbed.link.messages import Nack, make_nack, nack_missing
from testbed.link.segment import BROADCAST, SegmentHeader, describe_ranges, segment


class ObjectSender:
    """The frames of one object and which of them the current pass still has to send.

    The first pass sends every frame; ``next_pass`` starts another with the union of the frames the
    receivers' NACKs ask for (one copy serves every receiver that missed it).
    """

    def __init__(self, data: bytes, *, src: int, dsts: Sequence[int], object_id: int, frame_payload_bytes: int):
        self.src, self.dsts, self.object_id = src, tuple(dsts), object_id
        dst = self.dsts[0] if len(self.dsts) == 1 else BROADCAST
        self.frames = segment(data, object_id=object_id, src=src, dst=dst, frame_payload_bytes=frame_payload_bytes)
        self._pending = np.arange(len(self.frames))
        self._cursor = 0

    @property
    def count(self) -> int:
        return len(self.frames)

    @property
    def pass_done(self) -> bool:
        """True once every frame of the current pass was taken."""
        return self._cursor >= self._pending.size

    def take(self, max_frames: int) -> np.ndarray:
        """(k,) int64 sequence numbers of the next at most ``max_frames`` frames of this pass."""
        batch = self._pending[self._cursor : self._cursor + max_frames]
        self._cursor += batch.size
        return batch

    def next_pass(self, nacks: Sequence[Nack]) -> bool:
        """Start the next pass with the union of what ``nacks`` (for this object) ask for; False if none."""
        missing = [nack_missing(n, self.count) for n in nacks if n.object_id == self.object_id]
        self._pending = np.unique(np.concatenate(missing)) if missing else np.zeros(0, np.int64)
        self._cursor = 0
        return self._pending.size > 0


class Verdict(enum.Enum):
    """What a reassembler did with one frame."""

    NEW = "new"
    DUPLICATE = "duplicate"
    FOREIGN = "foreign"  # another object, sender or addressee
    INCONSISTENT = "inconsistent"  # right object, but geometry differs from the first frame seen


class Reassembler:
    """Collects the frames of one object from one sender at one node; delivers only a verified whole.

    node_id : the receiving node (frames addressed to another node are foreign; BROADCAST is accepted).
    src, object_id : the transfer this reassembler belongs to (known from the control plane).
    """

    def __init__(self, node_id: int, *, src: int, object_id: int) -> None:
        self.node_id, self.src, self.object_id = node_id, src, object_id
        self._geometry: tuple[int, int, int] | None = None  # (count, chunk_bytes, object_bytes)
        self._have = np.zeros(0, dtype=bool)
        self._stream = bytearray()
        self.verdicts: dict[Verdict, int] = dict.fromkeys(Verdict, 0)

    def offer(self, head: SegmentHeader, chunk: bytes) -> Verdict:
        """Keep the chunk if it is new and belongs here; never overwrite one already kept."""
        verdict = self._judge(head)
        if verdict is Verdict.NEW:
            start = head.seq * head.chunk_bytes
            self._stream[start : start + len(chunk)] = chunk
            self._have[head.seq] = True
        self.verdicts[verdict] += 1
        return verdict

    def _judge(self, head: SegmentHeader) -> Verdict:
        if head.src != self.src or head.object_id != self.object_id or head.dst not in (self.node_id, BROADCAST):
            return Verdict.FOREIGN
        geometry = (head.count, head.chunk_bytes, head.object_bytes)
        if self._geometry is None:
            self._geometry = geometry
            self._have = np.zeros(head.count, dtype=bool)
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
        return self._geometry is not None and bool(self._have.all())

    def missing(self) -> np.ndarray:
        """(k,) int64 sequence numbers not yet received (empty before the first frame: count unknown)."""
        return np.flatnonzero(~self._have)

    def missing_mask(self) -> np.ndarray:
        """(count,) bool, True where a frame is missing; (0,) before the first frame."""
        return ~self._have

    def nack(self) -> Nack:
        """What this receiver still misses, for the sender (frame_count 0: nothing heard yet)."""
        return make_nack(self.object_id, self.missing_mask())

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
