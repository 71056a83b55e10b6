"""The policy as a ``testbed.learning.assignment.AssignmentPolicy``: per round, each UE's mode (UE decision + BS
grouping), CPU frequency and TX power (resource allocation), from what the BS knows of the UEs.

The learning layer describes a UE by its nominal clock, cycles per sample, kappa, SNR, TX power and board
name. The policy adds what that profile lacks: the cpufreq table, memory and energy budget come from the UE's
own CAPABILITY_REPORT when the BS has one (``reports``), else from its board in profiles.toml by name (a board
not listed gets a continuous 40-100% range and an unbounded budget; logged). ``tx_power_control_db`` says how
far below its nominal power a UE may go: the default scenario's ``tx_power_dbm`` includes the Pluto's circuit
draw, which does not shrink with RF output, so power control is off (0 dB) unless asked for. Without
``deadline_s`` the deadline is the round time of the same groups at maximum frequency and power: allocation
then never lengthens a round, it only saves energy.

The default (``joint``) grouping prices each weak UE's centralized options over the training horizon
(centralized_cost.py); for that the policy needs the caller's ``Airtime`` (the one the virtual clock uses),
the number of samples each UE holds (reported at registration) and ``horizon_rounds``. The plan is made from
the first information (the first round it is asked for, with the rounds remaining then) and kept for later
rounds of the same UEs, so a UE that uploaded its raw data is not switched to symbols as the horizon shrinks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from testbed.errors import PolicyError
from testbed.learning.assignment import UeAssignment
from testbed.learning.assignment import UeProfile as LearningUe
from testbed.learning.clock import Airtime
from testbed.link.messages import ChannelReport
from testbed.mode import Mode
from testbed.policy.allocation import (
    AllocationConfig,
    RoundWork,
    UeResources,
    allocate_round,
    max_performance,
)
from testbed.policy.capability import CapabilityReport
from testbed.policy.choice import CostInputs, DataTerms, SentPolicy, choose
from testbed.policy.cpufreq import FrequencyTable
from testbed.policy.grouping import GroupAssignment, GroupingConfig
from testbed.policy.profiles import ProfileSet, default_profiles
from testbed.policy.variants import POLICY_VARIANTS  # noqa: F401  (re-exported: scheme names)
from testbed.policy.work import WorkSizes

log = logging.getLogger(__name__)

UNLISTED_BOARD_MIN_FREQ_FRACTION = 0.4  # continuous range of a board profiles.toml does not list
UNLISTED_BOARD_ENERGY_BUDGET_J = 1e6  # effectively unbounded
UNLISTED_BOARD_MEMORY_BYTES = 2**30
DECISION_DEADLINE_S = 1e3  # without a configured deadline, UEs decide on capability and energy only
# Default relative threshold: half the median UE. It separates the Pi Zero 2 / Pi 3 class (0.25-0.35 of a
# Pi 4) from Pi 4 / Pi 5 in both shipped scenarios, whatever the codec's size.
MEDIAN_THRESHOLD_FRACTION = 0.5
# Default allocation deadline as a multiple of the shortest round. Measured on the default scenario (seeds 1-3,
# docs/policy.md): 1.2 minimises (time to 90%) x (energy to 90%), the energy-delay product of training, with a
# flat optimum over 1.15-1.25; rounds are 9% longer than at 1.0 and energy per round 37% below every UE at
# maximum power and frequency (20% at 1.0, where the slowest UEs have no slack at all).
DEFAULT_DEADLINE_FACTOR = 1.2


@dataclass(frozen=True)
class PolicyConfig:
    """How the policy assigns: grouping rule and thresholds, work sizes, deadline, and the ablation switch
    ``allocate`` (False: every UE at its nominal clock and TX power, groups unchanged). With
    ``threshold_fraction_of_median`` the BS sets the capability threshold from the reports it received:
    that fraction of the median UE throughput at f_max (replacing the grouping's absolute threshold), so the
    split does not depend on the model's size. ``horizon_rounds``: rounds the training runs (the cost-aware
    grouping prices the symbol path over the rounds remaining). Without ``deadline_s`` the allocator's deadline
    is ``deadline_factor`` times the round time of the same groups at maximum frequency and power: 1 keeps
    rounds as short as they can be (allocation only slows UEs that would wait anyway); larger factors trade
    round time for energy (DEFAULT_DEADLINE_FACTOR; docs/policy.md, "Measured results")."""

    grouping: GroupingConfig
    work: WorkSizes
    deadline_s: float | None = None
    deadline_factor: float = DEFAULT_DEADLINE_FACTOR
    allocate: bool = True
    tx_power_control_db: float = 0.0
    allocation: AllocationConfig = field(default_factory=AllocationConfig)
    threshold_fraction_of_median: float | None = None
    horizon_rounds: int | None = None

    def __post_init__(self) -> None:
        fraction = self.threshold_fraction_of_median
        if fraction is not None and not (math.isfinite(fraction) and fraction > 0):
            raise PolicyError(f"threshold_fraction_of_median={fraction!r} must be finite and > 0 (or None)")
        if self.deadline_s is not None and not (math.isfinite(self.deadline_s) and self.deadline_s > 0):
            raise PolicyError(f"deadline_s={self.deadline_s!r} must be finite and > 0 (or None)")
        if not (math.isfinite(self.deadline_factor) and self.deadline_factor >= 1):
            raise PolicyError(
                f"deadline_factor={self.deadline_factor!r} must be finite and >= 1 (a shorter deadline than the "
                "max-performance round is infeasible for its slowest UE)"
            )
        if not (math.isfinite(self.tx_power_control_db) and self.tx_power_control_db >= 0):
            raise PolicyError(f"tx_power_control_db={self.tx_power_control_db!r} must be finite and >= 0")
        if self.horizon_rounds is not None and self.horizon_rounds < 1:
            raise PolicyError(f"horizon_rounds={self.horizon_rounds!r} must be >= 1 (or None)")


def _report(
    ue: LearningUe, cfg: PolicyConfig, profiles: ProfileSet, reported: CapabilityReport | None
) -> CapabilityReport:
    """The UE's capability: its own report (the BS's CAPABILITY_REPORT: cpufreq table, memory, budget, kappa)
    with this round's clock and TX power rule, else its board's by name."""
    power = (ue.tx_power_dbm - cfg.tx_power_control_db, ue.tx_power_dbm)
    if reported is not None:
        return dataclasses.replace(
            reported,
            samples_per_s=ue.cpu_freq_hz / ue.cycles_per_sample,
            cpu_freq_hz=ue.cpu_freq_hz,
            min_tx_power_dbm=max(power[0], reported.min_tx_power_dbm),
            max_tx_power_dbm=power[1],
        )
    board = profiles.profiles.get(ue.board)
    if board is not None:
        table, budget, memory = board.frequency_table, board.energy_budget_j, board.memory_bytes
    else:
        log.info("UE %s: board %r is not in profiles.toml; continuous range", ue.name, ue.board)
        table = FrequencyTable(UNLISTED_BOARD_MIN_FREQ_FRACTION * ue.max_cpu_freq_hz, ue.max_cpu_freq_hz)
        budget, memory = UNLISTED_BOARD_ENERGY_BUDGET_J, UNLISTED_BOARD_MEMORY_BYTES
    return CapabilityReport(
        ue_id=ue.name,
        samples_per_s=ue.cpu_freq_hz / ue.cycles_per_sample,
        cpu_freq_hz=ue.cpu_freq_hz,
        frequency_table=table,
        available_memory_bytes=memory,
        energy_budget_j=budget,
        kappa_j_per_cycle_hz2=ue.kappa,
        min_tx_power_dbm=power[0],
        max_tx_power_dbm=power[1],
    )


@dataclass(frozen=True)
class RoundSetup:
    """Groups (with reasons), each UE's resources with its group's work, and the threshold that was used."""

    groups: tuple[GroupAssignment, ...]
    work: list[tuple[UeResources, RoundWork]]
    threshold_samples_per_s: float


@dataclass(frozen=True)
class PolicyPlan:
    """One round's plan: groups with reasons and each UE's assignment, in the learning layer's UE order."""

    groups: tuple[GroupAssignment, ...]
    assignments: tuple[UeAssignment, ...]
    deadline_s: float


class PolicyAssignment:
    """Implements ``AssignmentPolicy``; the plan is computed once per distinct set of UE profiles.

    ``airtime`` (the virtual clock's or the link's) and ``local_samples`` (samples per UE id) let the
    ``joint`` rule price raw data against symbols; without them a weak UE sends symbols (reason logged).
    ``reports`` (UE id -> the UE's own capability report, e.g. from its CAPABILITY_REPORT) replace what the
    board table says of that UE. ``terms`` (UE id -> DataTerms; absent: raw allowed, no streaming) are what each
    UE's data allow, applied as the UE applies them to its own choice."""

    def __init__(
        self,
        cfg: PolicyConfig,
        profiles: ProfileSet | None = None,
        *,
        airtime: Airtime | None = None,
        local_samples: Mapping[str, int] | None = None,
        reports: Mapping[str, CapabilityReport] | None = None,
        terms: Mapping[str, DataTerms] | None = None,
    ) -> None:
        self.cfg = cfg
        self.terms = dict(terms or {})
        self.reports = dict(reports or {})
        self.profiles = profiles or default_profiles()
        self.airtime = airtime
        self.local_samples = dict(local_samples or {})
        self._cache: dict[tuple, PolicyPlan] = {}

    def plan(
        self, ues: Sequence[LearningUe], round_index: int = 0, chosen: Mapping[str, Mode] | None = None
    ) -> PolicyPlan:
        """Decisions, grouping and allocation for ``ues`` (PolicyError if no feasible allocation); made when
        these UEs are first seen (``round_index`` then sets the rounds remaining) and kept. ``chosen``: the
        modes UEs chose themselves (FIRST_INFO -> MODE_CHOICE), which replace the BS's own application of the
        rule; the allocation is then made for those groups."""
        picked = tuple(sorted((chosen or {}).items()))
        key = (tuple((u, self.reports.get(u.name)) for u in ues), picked)  # a new report (another table) replans
        if key not in self._cache:
            self._cache[key] = self._plan(tuple(ues), round_index, chosen)
        return self._cache[key]

    def _grouping(self, reports: Sequence[CapabilityReport]) -> GroupingConfig:
        fraction = self.cfg.threshold_fraction_of_median
        if fraction is None:
            return self.cfg.grouping
        rates = []
        for r in reports:
            try:
                r.validate()
            except PolicyError:
                continue  # an invalid report must not move everyone's threshold
            rates.append(r.samples_per_s_at(r.frequency_table.max_hz))
        if not rates:
            return self.cfg.grouping
        return dataclasses.replace(
            self.cfg.grouping, capability_threshold_samples_per_s=fraction * statistics.median(rates)
        )

    def sent_policy(self, reports: Sequence[CapabilityReport], round_index: int = 0, revision: int = 0) -> SentPolicy:
        """The first information's policy for these UEs: the grouping rule with the threshold from their reports,
        the deadline of the UEs' decision, the rounds remaining."""
        cfg = self.cfg
        horizon = None if cfg.horizon_rounds is None else max(cfg.horizon_rounds - round_index, 0) or None
        return SentPolicy(revision, self._grouping(reports), cfg.deadline_s or DECISION_DEADLINE_S, horizon,
                          len(reports))  # fmt: skip

    def cost_inputs(self, ue_id: str) -> CostInputs:
        terms = self.terms.get(ue_id, DataTerms())
        return CostInputs(self.cfg.work, self.local_samples.get(ue_id), self.airtime, self.cfg.allocation, terms)

    def reports_for(self, ues: Sequence[LearningUe]) -> list[CapabilityReport]:
        return [_report(u, self.cfg, self.profiles, self.reports.get(u.name)) for u in ues]

    def round_work(
        self, ues: Sequence[LearningUe], round_index: int = 0, chosen: Mapping[str, Mode] | None = None
    ) -> RoundSetup:
        """Each UE's group (its own choice when ``chosen`` has it, else the policy applied to what the BS knows
        of it, choice.py); then each UE's resources with its group's work."""
        cfg = self.cfg
        reports = self.reports_for(ues)
        channels = [ChannelReport.assumed(u.snr_db, u.tx_power_dbm, tx_node=i + 1) for i, u in enumerate(ues)]
        policy = self.sent_policy(reports, round_index)
        groups = []
        for r, c in zip(reports, channels, strict=True):
            if chosen is not None and r.ue_id in chosen:
                groups.append(GroupAssignment(r.ue_id, chosen[r.ue_id], "the UE's own choice"))
                continue
            got = choose(policy, r, c.snr_db, c.tx_power_dbm or 0.0, self.cost_inputs(r.ue_id))
            log.info("UE %s -> %s (%s rule): %s", r.ue_id, got.mode, policy.rule, got.reason)
            groups.append(GroupAssignment(r.ue_id, got.mode, got.reason))
        resources = [r.resources(c) for r, c in zip(reports, channels, strict=True)]
        work = [(res, cfg.work.for_mode(g.mode)) for res, g in zip(resources, groups, strict=True)]
        return RoundSetup(tuple(groups), work, policy.grouping.capability_threshold_samples_per_s)

    def _plan(self, ues: tuple[LearningUe, ...], round_index: int, chosen: Mapping[str, Mode] | None) -> PolicyPlan:
        cfg = self.cfg
        setup = self.round_work(ues, round_index, chosen)
        groups, work = setup.groups, setup.work
        fastest_s = max(max_performance(r, w, cfg.allocation).round_time_s for r, w in work)
        deadline = cfg.deadline_s or cfg.deadline_factor * fastest_s
        if cfg.allocate:
            plan = allocate_round(work, deadline, cfg.allocation)
            assignments = tuple(
                UeAssignment(g.mode, a.cpu_freq_hz, a.tx_power_dbm)
                for g, a in zip(groups, plan.allocations, strict=True)
            )
        else:
            assignments = tuple(
                UeAssignment(g.mode, u.cpu_freq_hz, u.tx_power_dbm) for g, u in zip(groups, ues, strict=True)
            )
        return PolicyPlan(groups, assignments, deadline)

    def assign(self, round_index: int, ues: Sequence[LearningUe]) -> list[UeAssignment]:
        """One assignment per UE, in ``ues`` order (the learning layer's AssignmentPolicy)."""
        return list(self.plan(ues, round_index).assignments)


def policy_variants(
    work: WorkSizes,
    threshold_samples_per_s: float | None = None,
    allocation: AllocationConfig | None = None,
    good_channel_snr_db: float = GroupingConfig.good_channel_snr_db,
    *,
    airtime: Airtime | None = None,
    local_samples: Mapping[str, int] | None = None,
    horizon_rounds: int | None = None,
    raw_upload_budget_s: float = GroupingConfig.raw_upload_budget_s,
    deadline_factor: float = DEFAULT_DEADLINE_FACTOR,
    terms: Mapping[str, DataTerms] | None = None,
) -> dict[str, PolicyAssignment]:
    """The policy and its ablations (POLICY_VARIANTS) as assignment policies, ready to wrap in schemes.
    Without ``threshold_samples_per_s`` the threshold is MEDIAN_THRESHOLD_FRACTION of the median UE;
    ``airtime``, ``local_samples`` and ``horizon_rounds`` feed the cost-aware grouping, ``terms`` each UE's
    privacy and data rate (PolicyAssignment)."""
    alloc = allocation or AllocationConfig()
    fraction = MEDIAN_THRESHOLD_FRACTION if threshold_samples_per_s is None else None
    absolute = threshold_samples_per_s or GroupingConfig.capability_threshold_samples_per_s

    def make(rule: str, allocate: bool = True) -> PolicyAssignment:
        grouping = GroupingConfig(rule, absolute, good_channel_snr_db, raw_upload_budget_s=raw_upload_budget_s)
        cfg = PolicyConfig(
            grouping, work, allocate=allocate, allocation=alloc, threshold_fraction_of_median=fraction,
            horizon_rounds=horizon_rounds, deadline_factor=deadline_factor,
        )  # fmt: skip
        return PolicyAssignment(cfg, airtime=airtime, local_samples=local_samples, terms=terms)

    return {
        "policy": make("joint"),
        "policy_no_alloc": make("joint", allocate=False),
        "policy_by_capability": make("capability"),
        "policy_by_channel": make("channel"),
        "policy_snr_threshold": make("joint_snr"),
    }
