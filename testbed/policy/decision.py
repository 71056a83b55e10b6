"""Mode choice on the UE from the first information the BS broadcast and the UE's own measurement.

Rule (in this order; the first that fires decides, its reason travels to the BS):
1. the UE's own report is invalid (NaN, zero, absurd) -> centralized (documented fallback: a UE that cannot
   measure itself is not trusted to train);
2. measured throughput below ``capability_threshold_samples_per_s`` -> centralized;
3. even at maximum frequency and power it cannot finish the distributed work (local training + gradient
   upload at its uplink SNR) within ``deadline_s`` -> centralized;
4. the least energy that meets the deadline exceeds its energy budget -> centralized;
5. otherwise distributed, at the least-energy operating point (which the BS may refine).
Which centralized mode (decoder or full) is the BS's grouping decision (grouping.py).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from testbed.errors import PolicyError
from testbed.link.messages import ChannelReport
from testbed.policy.allocation import AllocationConfig, RoundWork, UeAllocation, allocate_ue, max_performance
from testbed.policy.capability import CapabilityReport


class UeChoice(enum.StrEnum):
    """What the UE asks for; the BS refines CENTRALIZED into centralized_decoder or centralized_full."""

    DISTRIBUTED = "distributed"
    CENTRALIZED = "centralized"


@dataclass(frozen=True)
class FirstInformation:
    """What the BS broadcasts before the first round: the threshold, the deadline, the distributed work."""

    capability_threshold_samples_per_s: float
    deadline_s: float
    distributed_work: RoundWork
    allocation: AllocationConfig = AllocationConfig()

    def __post_init__(self) -> None:
        for name in ("capability_threshold_samples_per_s", "deadline_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise PolicyError(f"first information {name}={value!r} must be finite and > 0")


@dataclass(frozen=True)
class ModeDecision:
    """The UE's choice, why, and (when distributed) the operating point it plans to use."""

    ue_id: str
    choice: UeChoice
    reason: str
    allocation: UeAllocation | None = None


def choose_mode(info: FirstInformation, report: CapabilityReport, channel: ChannelReport) -> ModeDecision:
    """Apply the rule above; never raises for a bad report (the UE goes centralized and says why)."""
    centralized = UeChoice.CENTRALIZED
    try:
        resources = report.resources(channel)
    except PolicyError as exc:
        return ModeDecision(report.ue_id, centralized, f"invalid own report, fallback to centralized: {exc}")
    threshold = info.capability_threshold_samples_per_s
    best_rate = report.samples_per_s_at(report.frequency_table.max_hz)
    if best_rate < threshold:
        return ModeDecision(
            report.ue_id,
            centralized,
            f"capability {best_rate:.4g} samples/s at f_max is below the threshold {threshold:.4g} samples/s",
        )
    try:
        fastest = max_performance(resources, info.distributed_work, info.allocation)
    except PolicyError as exc:
        return ModeDecision(report.ue_id, centralized, f"cannot upload its update: {exc}")
    if fastest.round_time_s > info.deadline_s:
        return ModeDecision(
            report.ue_id,
            centralized,
            f"needs {fastest.round_time_s:.3g} s at maximum frequency and power, over deadline {info.deadline_s:.3g} s",
        )
    try:
        plan = allocate_ue(resources, info.distributed_work, info.deadline_s, info.allocation)
    except PolicyError as exc:
        return ModeDecision(report.ue_id, centralized, f"energy budget cannot be met: {exc}")
    return ModeDecision(
        report.ue_id,
        UeChoice.DISTRIBUTED,
        f"capability {best_rate:.4g} >= {threshold:.4g} samples/s; meets {info.deadline_s:.3g} s with "
        f"{plan.energy_j:.3g} J of {plan.energy_budget_j:.3g} J",
        plan,
    )
