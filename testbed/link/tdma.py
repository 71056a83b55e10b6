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
    frame the air may send, so a sender could never place its first frame): how many UEs the cycle fits, the
    smallest ``tdma_cycle_samples`` that fits them all. Also when there are more nodes than ``MAX_SLOTS``.
    """
    n = len(nodes)
    if n < 1 or cycle_samples < 1 or guard_samples < 0:
        raise ConfigError(
            f"a TDMA cycle needs at least one node, tdma_cycle_samples >= 1 and guard_samples >= 0; got {n} nodes, "
            f"{cycle_samples} and {guard_samples}"
        )
    if n > MAX_SLOTS:
        raise ConfigError(
            f"{n - 1} UEs and the BS need {n} TDMA slots; a schedule holds at most {MAX_SLOTS} (the BS and "
            f"{MAX_SLOTS - 1} UEs, testbed/link/messages.py MAX_SLOTS): use at most {MAX_SLOTS - 1} UEs"
        )
    slot = (cycle_samples - guard_samples * (n + 1)) // n
    if slot < frame_samples:
        ues = max_slots(cycle_samples, guard_samples, frame_samples) - 1  # UEs that fit beside the BS's slot
        need = min_cycle_samples(n, guard_samples, frame_samples)
        fits = f"the BS and {_ues(ues)}" if ues > 0 else "no UE beside the BS"
        fixes = [f"raise tdma_cycle_samples to at least {need} for {_ues(n - 1)}", "lower frame_payload_bytes"]
        fixes += [f"use at most {_ues(ues)}"] if ues > 0 else []
        raise ConfigError(
            f"tdma_cycle_samples={cycle_samples} with guard_samples={guard_samples} leaves {n} slots (one per "
            f"node, the BS's first) of {slot} samples, less than one {frame_samples}-sample frame (the longest "
            f"burst the air sends); the cycle fits {fits}: "
            f"{', '.join(fixes[:-1])} or {fixes[-1]}"
        )
    return make_schedule([(node, slot) for node in nodes], guard_samples)


def max_slots(cycle_samples: int, guard_samples: int, frame_samples: int) -> int:
    """Equal slots of at least ``frame_samples`` one cycle holds with guards before, between and after them
    (``cycle_schedule``'s rule: n slots fit when n * frame + (n + 1) * guard <= cycle)."""
    return max(0, (cycle_samples - guard_samples) // (frame_samples + guard_samples))


def min_cycle_samples(num_slots: int, guard_samples: int, frame_samples: int) -> int:
    """The shortest cycle whose ``num_slots`` equal slots each hold one ``frame_samples`` burst."""
    return num_slots * frame_samples + (num_slots + 1) * guard_samples


def _ues(n: int) -> str:
    return f"{n} UE" if n == 1 else f"{n} UEs"


def frames_per_slot(slot_samples: int, burst_samples: int, guard_samples: int) -> int:
    """Bursts of ``burst_samples`` a node fits back to back, ``guard_samples`` apart, in one slot."""
    return (slot_samples + guard_samples) // (burst_samples + guard_samples)
