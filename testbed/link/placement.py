"""Where a sender's frames go on the shared sample clock: back to back, or only inside its TDMA slot grant of
every cycle. ``BurstPlanner`` does no I/O: the caller plans jobs at its clock ``cursor``, takes the bursts
that are due before a horizon (to modulate and transmit them) and learns which jobs are fully on air once
its clock has passed their last burst. The radio pump (testbed/node/pump.py) and the in-process driver
(testbed/link/arq.py) both place frames with it, so a burst lands on the same sample in either.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from testbed.errors import LinkError
from testbed.link.messages import SlotGrant


@dataclass(frozen=True)
class Job:
    """Frames to send: ``frames`` are (PHY header seq, payload) pairs, modulated at ``mcs`` (analog frames:
    ANALOG_MCS, each payload a complex array; testbed/link/analog.py). ``slot``: place them only inside this
    grant of each TDMA cycle; None: back to back at once."""

    job_id: int
    frames: Sequence[tuple[int, bytes | np.ndarray]]
    mcs: str
    slot: SlotGrant | None = None


@dataclass(frozen=True)
class PlannedBurst:
    """One burst with its start on the sender's clock, waiting to be modulated and transmitted."""

    job_id: int
    start: int
    length: int
    seq: int
    payload: bytes | np.ndarray
    mcs: str
    last: bool  # the job's last burst: once the clock has passed it the job is on air

    @property
    def end(self) -> int:
        return self.start + self.length


class BurstPlanner:
    """Gives every burst of a job its start sample.

    guard_samples : silence between consecutive bursts (and after the last one before a new job).
    cycle_samples : the TDMA cycle a ``SlotGrant`` repeats in (unused for jobs without a slot).
    burst_samples : (payload size, MCS) -> exact burst length (testbed/link/analog.py ``frame_num_samples``).
    """

    def __init__(self, guard_samples: int, cycle_samples: int, burst_samples: Callable[[int, str], int]) -> None:
        self.guard, self.cycle, self._burst_samples = guard_samples, cycle_samples, burst_samples
        self._planned: collections.deque[PlannedBurst] = collections.deque()  # not yet handed out
        self._pending: list[tuple[int, int]] = []  # (job id, end) of jobs handed out whose last burst may be ahead
        self._tx_end = 0  # end of the last burst handed out

    @property
    def idle(self) -> bool:
        """Nothing planned and nothing handed out that is still on the air."""
        return not self._planned and not self._pending

    @property
    def next_start(self) -> int | None:
        """Start sample of the next planned burst (None: nothing planned)."""
        return self._planned[0].start if self._planned else None

    def plan(self, job: Job, cursor: int) -> None:
        """Place ``job``'s bursts after everything planned, not before ``cursor``: back to back ``guard``
        apart, or inside the job's slot of successive cycles. LinkError if a burst can never fit the slot."""
        guard = self.guard
        busy = self._planned[-1].end if self._planned else self._tx_end
        pos = max(cursor, busy + guard if busy else 0)
        slot_end = None
        if job.slot is not None:
            if self.cycle <= 0:
                raise LinkError(f"job {job.job_id} has a TDMA slot but the planner has no cycle; give cycle_samples")
            pos, slot_end = self._next_slot(job.slot, pos)
        for i, (seq, payload) in enumerate(job.frames):
            n = self._burst_samples(len(payload), job.mcs)
            if job.slot is not None and slot_end is not None and pos + n > slot_end:
                if n > job.slot.length_samples:
                    raise LinkError(
                        f"a {n}-sample burst cannot fit the {job.slot.length_samples}-sample TDMA slot; "
                        "raise tdma_cycle_samples or lower frame_payload_bytes"
                    )
                pos, slot_end = self._next_slot(job.slot, slot_end)
            self._planned.append(PlannedBurst(job.job_id, pos, n, seq, payload, job.mcs, i == len(job.frames) - 1))
            pos += n + guard

    def cancel(self, job_id: int) -> None:
        """Drop the bursts of ``job_id`` not yet handed out."""
        self._planned = collections.deque(b for b in self._planned if b.job_id != job_id)

    def due(self, horizon: int) -> list[PlannedBurst]:
        """Hand out every planned burst that starts before ``horizon``, in time order."""
        out = []
        while self._planned and self._planned[0].start < horizon:
            b = self._planned.popleft()
            self._tx_end = b.end
            if b.last:
                self._pending.append((b.job_id, b.end))
            out.append(b)
        return out

    def finished(self, cursor: int) -> list[tuple[int, int]]:
        """(job id, end sample) of the jobs whose last burst ended at or before ``cursor`` (each reported once)."""
        done = [p for p in self._pending if p[1] <= cursor]
        self._pending = [p for p in self._pending if p[1] > cursor]
        return done

    def _next_slot(self, slot: SlotGrant, not_before: int) -> tuple[int, int]:
        """Absolute (start, end) of the first occurrence of ``slot`` starting at or after ``not_before``."""
        k = max(0, math.ceil((not_before - slot.start_sample) / self.cycle))
        start = k * self.cycle + slot.start_sample
        return start, start + slot.length_samples
