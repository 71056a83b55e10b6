"""TDMA: the BS splits a cycle into one slot per transmitting node; a node places its bursts only inside
its own slot (testbed/link/placement.py). The schedule (``SlotSchedule``) is control information the BS
sends (each node's ``SlotGrant``, in ASSIGN).

``cycle_schedule`` is the shared medium as the daemons run it and the airtime model charges it: every
``tdma_cycle_samples`` the BS's downlink slot, then one equal slot per UE, guards before, between and after.
"""

from __future__ import annotations

from collections.abc import Sequence

from testbed.errors import ConfigError, LinkError
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


def cycle_schedule(cycle_samples: int, guard_samples: int, nodes: Sequence[int], frame_samples: int) -> SlotSchedule:
    """One TDMA cycle: ``nodes[0]``'s slot (the BS's downlink) first, then one per further node (the UEs' uplinks),
    all of one length, with ``guard_samples`` of silence before, between and after them.

    Raises ConfigError naming the numbers when a slot cannot hold one ``frame_samples`` burst (the longest
    frame the air may send), so a sender could never place its first frame.
    """
    n = len(nodes)
    if n < 1 or cycle_samples < 1 or guard_samples < 0:
        raise ConfigError(
            f"a TDMA cycle needs at least one node, tdma_cycle_samples >= 1 and guard_samples >= 0; got {n} nodes, "
            f"{cycle_samples} and {guard_samples}"
        )
    slot = (cycle_samples - guard_samples * (n + 1)) // n
    if slot < frame_samples:
        need = n * frame_samples + (n + 1) * guard_samples
        raise ConfigError(
            f"tdma_cycle_samples={cycle_samples} with guard_samples={guard_samples} leaves {n} slots (one per "
            f"node) of {slot} samples, less than one {frame_samples}-sample frame; raise tdma_cycle_samples "
            f"to at least {need}, lower frame_payload_bytes or use fewer UEs"
        )
    return make_schedule([(node, slot) for node in nodes], guard_samples)


def frames_per_slot(slot_samples: int, burst_samples: int, guard_samples: int) -> int:
    """Bursts of ``burst_samples`` a node fits back to back, ``guard_samples`` apart, in one slot."""
    return (slot_samples + guard_samples) // (burst_samples + guard_samples)
