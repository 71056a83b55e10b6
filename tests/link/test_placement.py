"""Where bursts land on the sample clock: back to back, or inside a slot grant of successive TDMA cycles."""

from __future__ import annotations

import pytest

from testbed.errors import LinkError
from testbed.link.messages import SlotGrant
from testbed.link.placement import BurstPlanner, Job

GUARD = 10
CYCLE = 1000


def planner() -> BurstPlanner:
    return BurstPlanner(GUARD, CYCLE, lambda payload_bytes, mcs: payload_bytes)  # a burst of n samples per byte


def job(job_id: int, *sizes: int, slot: SlotGrant | None = None) -> Job:
    return Job(job_id, [(i, bytes(n)) for i, n in enumerate(sizes)], "qpsk-1/2", slot)


def test_back_to_back_after_what_is_planned_and_not_before_the_cursor() -> None:
    p = planner()
    p.plan(job(1, 100, 50), cursor=500)
    p.plan(job(2, 30), cursor=0)
    assert [(b.job_id, b.start, b.end, b.last) for b in p.due(10**6)] == [
        (1, 500, 600, False), (1, 610, 660, True), (2, 670, 700, True)]  # fmt: skip
    assert p.finished(659) == [] and p.finished(700) == [(1, 660), (2, 700)] and p.idle
    p.plan(job(3, 10), cursor=0)  # after the last burst handed out, a guard apart
    assert [b.start for b in p.due(10**6)] == [710]


def test_slot_bursts_stay_inside_the_grant_of_successive_cycles() -> None:
    p = planner()
    grant = SlotGrant(2, 200, 300)  # samples 200..500 of every 1000-sample cycle
    p.plan(job(1, 140, 140, 140, 290, slot=grant), cursor=250)
    bursts = p.due(10**6)
    assert [(b.start, b.end) for b in bursts] == [(1200, 1340), (1350, 1490), (2200, 2340), (3200, 3490)]
    assert all(grant.start_sample <= b.start % CYCLE and b.end % CYCLE <= grant.end_sample for b in bursts)


def test_only_due_bursts_are_handed_out_and_cancel_drops_the_rest() -> None:
    p = planner()
    p.plan(job(1, 100, 100, 100), cursor=0)
    assert [b.start for b in p.due(111)] == [0, 110] and p.next_start == 220
    p.cancel(1)
    assert p.due(10**6) == [] and p.next_start is None
    assert p.finished(10**6) == [] and p.idle  # its last burst never went out: the job is never on air


def test_a_burst_longer_than_the_slot_is_refused() -> None:
    p = planner()
    with pytest.raises(LinkError, match="a 301-sample burst cannot fit the 300-sample TDMA slot"):
        p.plan(job(1, 301, slot=SlotGrant(1, 0, 300)), cursor=0)
    with pytest.raises(LinkError, match="no cycle"):
        BurstPlanner(GUARD, 0, lambda n, mcs: n).plan(job(1, 1, slot=SlotGrant(1, 0, 300)), cursor=0)
