"""The UE's energy budget per round, enforced before it trains: the most work whose predicted energy fits.

ASSIGN gives each UE a per-round ``energy_budget_j``. Before its training step the UE prices each way of doing
the round (full local work, then one local step fewer at a time; a raw upload has one way only) at the CPU
clock and TX power actually applied: compute by the CMOS model, radio as power x the airtime of that
option's upload (testbed/learning/cost.py, the model the allocator and the virtual clock share). It does the
most work that fits, less work when the full round does not ("reduced"), or declines the round ("declined":
no training, no upload) when not even the least does. The upload's airtime is priced with
``REPAIR_RESERVE`` more frames than its segmentation needs, so ordinary ARQ repairs stay inside the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from testbed.errors import PolicyError

WorkAction = Literal["full", "reduced", "declined"]
# Frames priced on top of an upload's segmentation: one repair pass of a quarter of its frames (the links of
# the shipped scenarios lose well under 10% of frames at the MCS the BS picks, link.airtime.MCS_MARGIN_DB).
REPAIR_RESERVE = 0.25


@dataclass(frozen=True)
class WorkOption:
    """One way to do a UE's round: ``local_steps`` minibatches (0: no local training, e.g. a raw upload),
    ``samples`` at ``cycle_fraction`` of a full training step each, and an upload of ``upload_bytes`` (digital,
    with ARQ) and ``analog_values`` complex values (semantic symbols as analog frames, sent once)."""

    local_steps: int
    samples: int
    cycle_fraction: float
    upload_bytes: int
    analog_values: int = 0


@dataclass(frozen=True)
class WorkPlan:
    """What the budget leaves of a round: the option to do (None: declined), its predicted joules, and why."""

    option: WorkOption | None
    energy_j: float
    action: WorkAction


def fit_budget(options: Sequence[WorkOption], energy_j: Callable[[WorkOption], float], budget_j: float) -> WorkPlan:
    """The first of ``options`` (most work first, as ``UeTraining.work_options`` lists them) whose predicted
    ``energy_j`` is within ``budget_j``: "full" for the first, "reduced" for a later one, else "declined"
    (with the energy of the least option, which did not fit)."""
    if not options:
        raise PolicyError("fit_budget needs at least one work option (the full round)")
    if not (math.isfinite(budget_j) and budget_j >= 0):
        raise PolicyError(f"energy budget {budget_j!r} J must be finite and >= 0")
    energy = 0.0
    for i, option in enumerate(options):
        energy = energy_j(option)
        if energy <= budget_j:
            return WorkPlan(option, energy, "full" if i == 0 else "reduced")
    return WorkPlan(None, energy, "declined")


def priced_frames(frames: int) -> float:
    """Frames an upload of ``frames`` is priced at: its own plus the repair reserve."""
    return frames * (1.0 + REPAIR_RESERVE)
