"""TDMA: the BS splits a cycle into one slot per transmitting node; a node places its bursts only inside
its own slot (testbed/link/placement.py). The schedule (``SlotSchedule``) is control information the BS
sends (each node's ``SlotGrant``, in ASSIGN).
"""

from __future__ import annotations

from collections.abc import Sequence

from testbed.errors import LinkError
from testbed.link.messages import MAX_SLOTS, SlotGrant, SlotSchedule


def make_schedule(demands: Sequence[tuple[int, int]], guard_samples: int) -> SlotSchedule:
    """Give each (node_id, samples needed) a slot in order, with ``guard_samples`` of silence before, between
    and after the slots, so no two nodes' bursts can overlap even with a small timing error.

    Raises LinkError on a repeated node, a negative demand or guard, or more than ``MAX_SLOTS`` nodes.
    """
    nodes = [n for n, _ in demands]
    if len(demands) > MAX_SLOTS or len(set(nodes)) != len(nodes):
        raise LinkError(f"a schedule takes at most {MAX_SLOTS} distinct nodes, got {nodes}")
    if guard_samples < 0:
        raise LinkError(f"guard_samples={guard_samples} must be >= 0")
    slots, cursor = [], guard_samples
    for node_id, need in demands:
        if need < 0:
            raise LinkError(f"node {node_id} asks for {need} samples; a demand must be >= 0")
        slots.append(SlotGrant(node_id, cursor, need))
        cursor += need + guard_samples
    return SlotSchedule(cursor, slots)
