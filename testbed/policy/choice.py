"""The UE's choice of training mode from the first information: one rule that the UE applies to choose, and the
BS applies to check a reported choice and to plan.

``SentPolicy`` is what FIRST_INFO says, in the policy's types (testbed/policy/wire.py converts): the grouping
rule with its threshold and parameters, the group of each training mode, the deadline the distributed work
must meet, the training horizon and the number of UEs sharing the uplink (the cost rule's airtime), and, for
the rule ``fixed`` (baselines, the [assign] section), the mode the BS assigned. ``choose`` applies it to one
UE's own figures: its capability report (throughput at f_max in samples/s, the threshold's unit) and the
effective SNR of its uplink (channel coefficients through EESM, testbed/link/abstraction.py): first the UE's
decision (decision.py: threshold, deadline, energy budget), then the grouping rule (grouping.py) for which
centralized mode, with the centralized costs (centralized_cost.py) for the ``joint`` rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from testbed.errors import PolicyError
from testbed.learning.clock import Airtime
from testbed.link.messages import ChannelReport
from testbed.mode import Mode
from testbed.policy.allocation import AllocationConfig
from testbed.policy.capability import CapabilityReport
from testbed.policy.centralized_cost import centralized_cost
from testbed.policy.decision import FirstInformation, choose_mode
from testbed.policy.grouping import GROUPING_RULES, GroupAssignment, GroupingConfig, UeObservation
from testbed.policy.work import WorkSizes

CAPABILITY_UNIT = "samples_per_s"  # training samples per second at the UE's maximum CPU clock
FIXED_RULE = "fixed"  # the BS names each UE's mode (baselines, the [assign] section)
GROUP_OF_MODE: dict[Mode, int] = {mode: i for i, mode in enumerate(Mode)}  # groups 1:1 with modes (idle: sits out)
# How far the capability a UE reports in MODE_CHOICE may stray from its CAPABILITY_REPORT (rounding only).
CAPABILITY_REL_TOL = 1e-6
CHANNEL_TOL_DB = 1.0  # a downlink-based SNR in MODE_CHOICE against the UE's own latest CHANNEL_REPORT


@dataclass(frozen=True)
class SentPolicy:
    """The first information's policy part (module docstring); ``assigned_mode`` only for rule ``fixed``."""

    revision: int
    grouping: GroupingConfig
    deadline_s: float
    horizon_rounds: int | None
    num_ues: int
    group_of_mode: Mapping[Mode, int] = field(default_factory=lambda: dict(GROUP_OF_MODE))
    assigned_mode: Mode | None = None

    @property
    def rule(self) -> str:
        return FIXED_RULE if self.assigned_mode is not None else self.grouping.rule

    def group(self, mode: Mode) -> int:
        if mode not in self.group_of_mode:
            raise PolicyError(f"the policy has no group for mode {mode}; its groups: {dict(self.group_of_mode)}")
        return self.group_of_mode[mode]


@dataclass(frozen=True)
class Allocation:
    """One UE's resources from the first information."""

    tx_power_dbm: float
    energy_budget_j: float
    cpu_freq_hz: float


@dataclass(frozen=True)
class DataTerms:
    """What a UE's data allow: ``raw_allowed`` False keeps its raw samples on it (privacy: every rule then gives
    it symbols where it would give raw data); ``samples_per_round`` new samples it gathers per round (streaming:
    a raw upload must then be repeated for the new ones, and the ``joint`` rule prices that over the horizon)."""

    raw_allowed: bool = True
    samples_per_round: int = 0

    def __post_init__(self) -> None:
        if self.samples_per_round < 0:
            raise PolicyError(f"samples_per_round={self.samples_per_round} must be >= 0")


@dataclass(frozen=True)
class CostInputs:
    """What the ``joint`` rule needs besides the UE's reports: the work of each mode, the UE's sample count,
    the air's model (with the policy's ``num_ues`` sharing the uplink) and what the UE's data allow."""

    work: WorkSizes
    local_samples: int | None
    airtime: Airtime | None
    allocation: AllocationConfig = field(default_factory=AllocationConfig)
    terms: DataTerms = field(default_factory=DataTerms)


@dataclass(frozen=True)
class Choice:
    """A UE's mode and group, the figures it used and why."""

    mode: Mode
    group: int
    capability_samples_per_s: float
    channel_snr_db: float | None
    reason: str


def capability_of(report: CapabilityReport) -> float:
    """The figure the threshold is compared with: training samples/s at the UE's maximum clock."""
    return report.samples_per_s_at(report.frequency_table.max_hz)


def choose(
    policy: SentPolicy,
    report: CapabilityReport,
    channel_snr_db: float | None,
    tx_power_dbm: float,
    inputs: CostInputs,
) -> Choice:
    """Apply ``policy`` to one UE: its report and the effective SNR of its uplink at ``tx_power_dbm`` (None when
    it has none: the rules treat the channel as poor). Never raises for bad figures: the rules fall back and say
    so in the reason (grouping.py); PolicyError only when the rule yields a mode the policy has no group for."""
    capability = capability_of(report) if math.isfinite(report.samples_per_s) else 0.0
    if policy.assigned_mode is not None:
        mode = policy.assigned_mode
        return Choice(mode, policy.group(mode), capability, channel_snr_db, f"assigned {mode} by the BS")
    channel = None if channel_snr_db is None else ChannelReport.assumed(channel_snr_db, tx_power_dbm)
    grouping = policy.grouping
    decision = cost = None
    if channel is not None and grouping.rule in ("joint", "joint_snr"):
        work = inputs.work.for_mode(Mode.DISTRIBUTED)
        info = FirstInformation(grouping.capability_threshold_samples_per_s, policy.deadline_s, work, inputs.allocation)
        decision = choose_mode(info, report, channel)
    if channel is not None and grouping.rule == "joint":
        known = inputs.airtime is not None and inputs.local_samples is not None and policy.horizon_rounds
        if known:
            # a streaming UE's raw path sends what it holds and what it gathers until the horizon
            held = inputs.local_samples + inputs.terms.samples_per_round * policy.horizon_rounds  # type: ignore[operator]
            try:
                cost = centralized_cost(report, channel, inputs.work, held, policy.horizon_rounds,  # type: ignore[arg-type]
                                        inputs.airtime)  # type: ignore[arg-type]  # fmt: skip
            except PolicyError:
                cost = None  # the rule says "no cost estimate"
    got: GroupAssignment = GROUPING_RULES[grouping.rule](UeObservation(report.ue_id, report, channel, decision, cost),
                                                         grouping)  # fmt: skip
    mode, reason = got.mode, got.reason
    if mode is Mode.CENTRALIZED_FULL and not inputs.terms.raw_allowed:
        mode, reason = Mode.CENTRALIZED_DECODER, f"raw samples may not leave this UE, symbols instead ({reason})"
    return Choice(mode, policy.group(mode), capability, channel_snr_db, reason)


def check(
    policy: SentPolicy,
    report: CapabilityReport,
    claimed: Choice,
    tx_power_dbm: float,
    inputs: CostInputs,
    *,
    uplink_snr_db: float | None,
    downlink_snr_db: float | None,
) -> str | None:
    """The BS's check of a reported choice: None if consistent, else why not. The figures must be the UE's own
    (its CAPABILITY_REPORT; the uplink SNR the BS sent, or its downlink report within CHANNEL_TOL_DB) and the
    policy applied to them must give the claimed mode and group."""
    own = capability_of(report)
    if not math.isclose(claimed.capability_samples_per_s, own, rel_tol=CAPABILITY_REL_TOL):
        return f"capability {claimed.capability_samples_per_s:.6g} is not its CAPABILITY_REPORT's {own:.6g} samples/s"
    snr = claimed.channel_snr_db
    if uplink_snr_db is not None and (snr is None or abs(snr - uplink_snr_db) > 1e-6):
        return f"channel SNR {snr} is not the uplink's {uplink_snr_db:.2f} dB that FIRST_INFO sent"
    if uplink_snr_db is None and snr is not None:
        if downlink_snr_db is None:
            return f"channel SNR {snr:.2f} dB claimed, but the UE reported no downlink channel"
        if abs(snr - downlink_snr_db) > CHANNEL_TOL_DB:
            return f"channel SNR {snr:.2f} dB is {abs(snr - downlink_snr_db):.1f} dB off its CHANNEL_REPORT's"
    expect = choose(policy, report, snr, tx_power_dbm, inputs)
    if (expect.mode, expect.group) != (claimed.mode, claimed.group):
        return f"the policy gives {expect.mode} (group {expect.group}) for these figures: {expect.reason}"
    return None
