"""The BS's side of the first information: what it offers each UE, how it checks a UE's choice, what it ASSIGNs.

Each round the BS core asks its ``Assigner`` for one ``Offer`` per UE (the policy and the UE's allocation,
sent as FIRST_INFO), checks each UE's MODE_CHOICE with ``check`` (the policy applied to the UE's own figures
must give its choice), then asks for the ``orders`` of ASSIGN given the modes the UEs chose. Two assigners:

- ``FixedAssigner``: the BS names each UE's mode (rule ``fixed``): the [assign] section (``config_assigner``)
  and the engine's baselines.
- ``PolicyAssigner``: testbed/policy's grouping rule and allocation (``PolicyAssignment``). The offer carries
  the rule with the threshold set from the UEs' capability reports and each UE's predicted allocation; ASSIGN
  carries the least-energy allocation for the groups the UEs chose. Its UEs are planned from their
  CAPABILITY_REPORT (kept whole: cpufreq table, kappa, energy, TX range, memory) and the effective SNR the BS
  measured on their uplink (else their downlink report, by reciprocity; else [assign] assumed_snr_db).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from testbed.control import protocol
from testbed.errors import PolicyError
from testbed.learning.assignment import UeProfile as LearningUe
from testbed.learning.codec_config import CodecConfig
from testbed.learning.spec import TrainingSpec
from testbed.link.airtime import LinkAirtime
from testbed.mode import Mode
from testbed.node.config import Assignment
from testbed.policy.allocation import AllocationConfig
from testbed.policy.assign import MEDIAN_THRESHOLD_FRACTION, PolicyAssignment, PolicyConfig
from testbed.policy.choice import GROUP_OF_MODE, Allocation, Choice, SentPolicy, check
from testbed.policy.grouping import GroupingConfig
from testbed.policy.profiles import default_profiles
from testbed.policy.wire import report_from_wire
from testbed.policy.work import codec_work_sizes

log = logging.getLogger(__name__)

REFERENCE_BOARD = "pi_4"  # profiles.toml's reference board: how a UE that has not reported is planned
PI4_CYCLES_PER_SAMPLE = 5.58e5  # docs/learning.md board table (default MNIST codec), until a report arrives
FIXED_DEADLINE_S = 86_400.0  # rule "fixed" decides nothing by deadline: the protocol's largest


@dataclass(frozen=True)
class Orders:
    """One UE's ASSIGN fields besides MCS and slot."""

    mode: Mode
    group: int
    cpu_freq_hz: float
    tx_power_dbm: float
    energy_budget_j: float


@dataclass(frozen=True)
class UeView:
    """What the BS holds about one UE when it plans a round: its CAPABILITY_REPORT and the effective SNRs of
    its uplink (measured by the BS) and of its downlink (from its CHANNEL_REPORT), None where unmeasured."""

    ue_id: str
    capability: protocol.CapabilityReport | None
    uplink_snr_db: float | None
    downlink_snr_db: float | None = None

    @property
    def snr_db(self) -> float | None:
        """The best figure for the uplink: measured on it, else the downlink's (a TDD link is reciprocal)."""
        return self.uplink_snr_db if self.uplink_snr_db is not None else self.downlink_snr_db


@dataclass(frozen=True)
class Offer:
    """One UE's first information: the policy and the UE's allocation (FIRST_INFO, policy/wire.py)."""

    policy: SentPolicy
    allocation: Allocation


class Assigner(Protocol):
    """How the BS core plans a round (module docstring)."""

    def offers(self, views: Sequence[UeView]) -> dict[str, Offer]: ...

    def check(self, view: UeView, offer: Offer, choice: Choice) -> str | None:
        """None if ``choice`` is what ``offer`` gives for the UE's figures, else why not."""
        ...

    def orders(self, views: Sequence[UeView], chosen: Mapping[str, Mode] | None) -> dict[str, Orders]:
        """ASSIGN's orders for the modes the UEs chose (None: the assigner's own)."""
        ...


def learning_profile(view: UeView, assumed_snr_db: float, tx_power_dbm: float) -> LearningUe:
    """The learning layer's view of a UE from its CAPABILITY_REPORT (at its maximum clock), or of the reference
    board by name until it reported."""
    cap = view.capability
    snr = assumed_snr_db if view.snr_db is None else view.snr_db
    if cap is None or cap.cycles_per_sample <= 0:
        ref = default_profiles().get(REFERENCE_BOARD)
        f_max, cycles, power = ref.cpu_freq_max_hz, PI4_CYCLES_PER_SAMPLE, tx_power_dbm
        return LearningUe(view.ue_id, False, snr, power, f_max, f_max, cycles, ref.kappa_j_per_cycle_hz2, ref.name)
    f_max, power = cap.cpu_freq_max_hz, min(tx_power_dbm, cap.max_tx_power_dbm)
    return LearningUe(view.ue_id, False, snr, power, f_max, f_max, cap.cycles_per_sample, cap.kappa_j_per_cycle_hz2)


class FixedAssigner:
    """The BS names each UE's mode (rule ``fixed``); ``orders_of`` gives the modes and allocations."""

    def __init__(self, orders_of: Callable[[Sequence[UeView]], dict[str, Orders]]) -> None:
        self.orders_of = orders_of

    def offers(self, views: Sequence[UeView]) -> dict[str, Offer]:
        out = {}
        for ue, o in self.orders_of(views).items():
            policy = SentPolicy(0, GroupingConfig(), FIXED_DEADLINE_S, None, len(views), assigned_mode=o.mode)
            out[ue] = Offer(policy, Allocation(o.tx_power_dbm, o.energy_budget_j, o.cpu_freq_hz))
        return out

    def check(self, view: UeView, offer: Offer, choice: Choice) -> str | None:
        want = offer.policy.assigned_mode
        if (choice.mode, choice.group) != (want, offer.policy.group_of_mode.get(want)):  # type: ignore[arg-type]
            return f"the BS assigned {want}, the UE chose {choice.mode} (group {choice.group})"
        return None

    def orders(self, views: Sequence[UeView], chosen: Mapping[str, Mode] | None) -> dict[str, Orders]:
        picked = chosen or {}
        return {ue: dataclasses.replace(o, mode=picked.get(ue, o.mode), group=GROUP_OF_MODE[picked.get(ue, o.mode)])
                for ue, o in self.orders_of(views).items()}  # fmt: skip


def config_orders(assign: Assignment, ues: Sequence[str]) -> dict[str, Orders]:
    """Orders from the [assign] section (``modes`` per UE, else ``mode``)."""
    out = {}
    for ue in ues:
        mode = assign.modes.get(ue, assign.mode)
        out[ue] = Orders(mode, GROUP_OF_MODE[mode], assign.cpu_freq_hz, assign.tx_power_dbm, assign.energy_budget_j)
    return out


def config_assigner(assign: Assignment) -> FixedAssigner:
    """The [assign] section's modes and allocation, the same every round."""
    return FixedAssigner(lambda views: config_orders(assign, [v.ue_id for v in views]))


class PolicyAssigner:
    """Assigner from testbed/policy (module docstring). ``profiles``: the UEs as the caller knows them (the
    engine knows each board), else each is planned from its view (``learning_profile``). ``budgets``: each UE's
    energy budget when it has not reported one. When the policy finds no feasible allocation (logged), every UE
    is offered and assigned its maximum clock and nominal TX power: the UEs still choose by the rule."""

    def __init__(
        self,
        policy: PolicyAssignment,
        *,
        assumed_snr_db: float,
        tx_power_dbm: float,
        profiles: Sequence[LearningUe] | None = None,
        budgets: Mapping[str, float] | None = None,
    ) -> None:
        self.policy = policy
        self.assumed_snr_db, self.tx_power_dbm = assumed_snr_db, tx_power_dbm
        self.profiles = {p.name: p for p in profiles} if profiles is not None else None
        self.budgets = dict(budgets or {})
        self._sent: dict[tuple, SentPolicy] = {}

    def _profiles(self, views: Sequence[UeView]) -> list[LearningUe]:
        """Each UE's profile, its reports absorbed: what a UE reports overrides the partition and the board table."""
        out = []
        for v in views:
            if v.capability is not None:
                self.policy.local_samples[v.ue_id] = v.capability.num_local_samples
                try:
                    self.policy.reports[v.ue_id] = report_from_wire(v.ue_id, v.capability)
                except PolicyError as exc:
                    log.warning("capability report of %s not used: %s", v.ue_id, exc)
                    self.policy.reports.pop(v.ue_id, None)
            known = self.profiles.get(v.ue_id) if self.profiles is not None else None
            if known is None:
                out.append(learning_profile(v, self.assumed_snr_db, self.tx_power_dbm))
            else:
                out.append(known if v.snr_db is None else dataclasses.replace(known, snr_db=v.snr_db))
        return out

    def _budget(self, view: UeView) -> float:
        if view.capability is not None:
            return view.capability.energy_available_j
        return self.budgets.get(view.ue_id, 0.0)

    def sent_policy(self, views: Sequence[UeView]) -> SentPolicy:
        """The policy part of every UE's FIRST_INFO, made once per set of reports (so the threshold and the
        horizon stay as they were when these UEs were first planned)."""
        profiles = self._profiles(views)
        key = tuple((u.name, self.policy.reports.get(u.name)) for u in profiles)
        if key not in self._sent:
            reports = self.policy.reports_for(profiles)
            sent = self.policy.sent_policy(reports)
            num_ues = self.policy.airtime.num_ues if isinstance(self.policy.airtime, LinkAirtime) else len(reports)
            self._sent[key] = dataclasses.replace(sent, num_ues=num_ues)
        return self._sent[key]

    def offers(self, views: Sequence[UeView]) -> dict[str, Offer]:
        policy = self.sent_policy(views)
        try:
            plan = self.policy.plan(self._profiles(views))
        except PolicyError as exc:
            log.warning("policy found no feasible allocation (%s); every UE offered its maximum clock", exc)
            points = [(u.tx_power_dbm, u.max_cpu_freq_hz) for u in self._profiles(views)]
        else:
            points = [(a.tx_power_dbm, a.cpu_freq_hz) for a in plan.assignments]
        return {v.ue_id: Offer(policy, Allocation(power, self._budget(v), freq))
                for v, (power, freq) in zip(views, points, strict=True)}  # fmt: skip

    def check(self, view: UeView, offer: Offer, choice: Choice) -> str | None:
        if view.capability is None:
            return "no CAPABILITY_REPORT to check the choice against"
        try:
            report = report_from_wire(view.ue_id, view.capability)
        except PolicyError as exc:
            return f"its CAPABILITY_REPORT is not usable: {exc}"
        return check(offer.policy, report, choice, report.max_tx_power_dbm, self.policy.cost_inputs(view.ue_id),
                     uplink_snr_db=view.uplink_snr_db, downlink_snr_db=view.downlink_snr_db)  # fmt: skip

    def orders(self, views: Sequence[UeView], chosen: Mapping[str, Mode] | None) -> dict[str, Orders]:
        """ASSIGN for the groups the UEs chose (a UE without a choice sits the round out); ``chosen`` None:
        the groups of the BS's own application of the rule (UEs that do not choose)."""
        if chosen is None:
            active = list(views)
        else:
            active = [v for v in views if chosen.get(v.ue_id, Mode.IDLE) is not Mode.IDLE]
        out = {v.ue_id: Orders(Mode.IDLE, GROUP_OF_MODE[Mode.IDLE], 0.0, 0.0, 0.0) for v in views}
        if not active:
            return out
        picked = None if chosen is None else {v.ue_id: chosen[v.ue_id] for v in active}
        profiles = self._profiles(active)
        try:
            plan = self.policy.plan(profiles, chosen=picked)
        except PolicyError as exc:
            log.warning("policy found no feasible allocation (%s); every UE at its maximum clock", exc)
            groups = self.policy.round_work(profiles, chosen=picked).groups
            for v, u, g in zip(active, profiles, groups, strict=True):
                out[v.ue_id] = Orders(g.mode, GROUP_OF_MODE[g.mode], u.max_cpu_freq_hz, u.tx_power_dbm, self._budget(v))
            return out
        for v, g, a in zip(active, plan.groups, plan.assignments, strict=True):
            out[v.ue_id] = Orders(a.mode, GROUP_OF_MODE[a.mode], a.cpu_freq_hz, a.tx_power_dbm, self._budget(v))
            log.info("policy: %s -> %s at %.0f MHz, %.1f dBm (%s)", v.ue_id, a.mode, a.cpu_freq_hz / 1e6,
                     a.tx_power_dbm, g.reason)  # fmt: skip
        return out


def daemon_policy_assigner(
    assign: Assignment,
    training: TrainingSpec,
    codec: CodecConfig,
    *,
    airtime: LinkAirtime | None = None,
    horizon_rounds: int | None = None,
    shard_samples: Mapping[str, int] | None = None,
) -> PolicyAssigner:
    """The BS daemon's policy ([assign] policy = RULE): threshold half the median UE, least-energy CPU frequency
    and TX power within ``deadline_factor``; the [assign] orders when the policy finds no feasible plan.

    The cost-aware ``joint`` rule prices a weak UE's raw upload against symbols over the training: it needs
    ``airtime`` (the link's model of this air, which the allocation then uses too), ``horizon_rounds`` ([bs]
    num_rounds; None while it runs until stopped) and each UE's sample count (its CAPABILITY_REPORT, else
    ``shard_samples``). Without them a weak UE sends symbols ("no cost estimate"). [assign]'s TX power is the
    nominal power of a UE that has not reported."""
    sizes = codec_work_sizes(codec, training.local_training, training.raw_block_samples)
    cfg = PolicyConfig(
        GroupingConfig(assign.policy, raw_upload_budget_s=assign.raw_upload_budget_s),
        sizes,
        deadline_factor=assign.deadline_factor,
        threshold_fraction_of_median=MEDIAN_THRESHOLD_FRACTION,
        horizon_rounds=horizon_rounds,
        allocation=AllocationConfig(airtime=airtime) if airtime is not None else AllocationConfig(),
    )
    policy = PolicyAssignment(cfg, airtime=airtime, local_samples=shard_samples)
    return PolicyAssigner(policy, assumed_snr_db=assign.assumed_snr_db, tx_power_dbm=assign.tx_power_dbm)
