"""TDMA: the BS splits a window into one slot per transmitting node; a node places its bursts only inside
its own slot. The schedule (``SlotSchedule``) is control information the BS sends before the window.
"""

from __future__ import annotations

from collections.abc import Sequence

from testbed.errors import LinkError
from testbed.link.messages import MAX_SLOTS, SlotGrant, SlotSchedule


def slot_need(burst_samples: Sequence[int], guard_samples: int) -> int:
    """Samples a node needs for ``burst_samples`` sent back to back with ``guard_samples`` between them."""
    return sum(burst_samples) + guard_samples * max(len(burst_samples) - 1, 0)


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


def place_in_slot(grant: SlotGrant, burst_samples: Sequence[int], guard_samples: int) -> list[int]:
    """Start samples for bursts sent back to back inside ``grant``.

    Raises LinkError if they do not fit: a node never transmits outside its slot.
    """
    need = slot_need(burst_samples, guard_samples)
    if need > grant.length_samples:
        raise LinkError(
            f"node {grant.node_id}: {len(burst_samples)} bursts need {need} samples but the slot holds "
            f"{grant.length_samples}; ask the BS for a larger slot or send fewer frames"
        )
    starts, cursor = [], grant.start_sample
    for n in burst_samples:
        starts.append(cursor)
        cursor += n + guard_samples
    return starts
