"""First information over the control plane: capability reports, the orders in ASSIGN, energy against budget.

UE side (``UeFirstInfo``): the agent measures its training throughput at start-up and whenever the BS sends
CAPABILITY_ENQUIRY, in its worker thread (``testbed.policy.capability.measure_codec_throughput``, the
benchmark's measurement -> ``build_report`` -> ``policy.wire.report_to_wire``), applies
ASSIGN's CPU frequency through the policy's cpufreq interface (``SimulatedCpuFreq`` for a simulated board,
Linux cpufreq otherwise), fits each round's work to ASSIGN's energy budget before training (``plan_work``,
testbed/policy/budget.py) and charges what the round spent (cost.py's CMOS and radio models, at the clock
and the TX power actually applied) next to that budget.

BS side: ``config_orders`` (the [assign] fields) or ``PolicyOrders`` (testbed/policy's grouping and
allocation, ``PolicyAssignment``, from the capability reports and the measured uplink SNR) give each UE its
mode, group, CPU frequency, TX power and energy budget for ASSIGN. The BS keeps each UE's whole
CAPABILITY_REPORT (``policy.wire.report_from_wire``): its cpufreq table (minimum, maximum, step), kappa, energy
budget, TX range and memory; until a UE has reported, it is planned as the reference board (pi_4) by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from testbed.control import protocol
from testbed.errors import ConfigError, PolicyError
from testbed.learning.assignment import UeProfile as LearningUe
from testbed.learning.codec import CodecConfig, SemanticCodec
from testbed.learning.cost import compute_energy_j, radio_energy_j
from testbed.learning.spec import TrainingSpec
from testbed.link.airtime import LinkAirtime
from testbed.mode import Mode
from testbed.node.config import Assignment, UeSection
from testbed.policy.allocation import AllocationConfig
from testbed.policy.assign import MEDIAN_THRESHOLD_FRACTION, PolicyAssignment, PolicyConfig
from testbed.policy.budget import WorkOption, WorkPlan, fit_budget
from testbed.policy.capability import CapabilityReport, build_report, measure_codec_throughput
from testbed.policy.cpufreq import CpuFreqControl, SimulatedCpuFreq, SysfsCpuFreq
from testbed.policy.grouping import GroupingConfig
from testbed.policy.profiles import default_profiles
from testbed.policy.wire import report_from_wire, report_to_wire
from testbed.policy.work import codec_work_sizes

log = logging.getLogger(__name__)

GROUP_OF_MODE = {mode: i for i, mode in enumerate(Mode)}  # ASSIGN's group: one group per training mode
REFERENCE_BOARD = "pi_4"  # profiles.toml's reference board: how a UE that has not reported is planned
PI4_CYCLES_PER_SAMPLE = 5.58e5  # docs/learning.md board table (default MNIST codec), until a report arrives


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
    """What the BS holds about one UE when it plans a round."""

    ue_id: str
    capability: protocol.CapabilityReport | None
    uplink_snr_db: float | None


def config_orders(assign: Assignment, ues: Sequence[str]) -> dict[str, Orders]:
    """Orders from the [assign] section (``modes`` per UE, else ``mode``)."""
    out = {}
    for ue in ues:
        mode = assign.modes.get(ue, assign.mode)
        out[ue] = Orders(mode, GROUP_OF_MODE[mode], assign.cpu_freq_hz, assign.tx_power_dbm, assign.energy_budget_j)
    return out


def learning_profile(view: UeView, assumed_snr_db: float, tx_power_dbm: float) -> LearningUe:
    """The learning layer's view of a UE from its CAPABILITY_REPORT (at its maximum clock), or of the reference
    board by name until it reported."""
    cap = view.capability
    snr = assumed_snr_db if view.uplink_snr_db is None else view.uplink_snr_db
    if cap is None or cap.cycles_per_sample <= 0:
        ref = default_profiles().get(REFERENCE_BOARD)
        f_max, cycles, power = ref.cpu_freq_max_hz, PI4_CYCLES_PER_SAMPLE, tx_power_dbm
        return LearningUe(view.ue_id, False, snr, power, f_max, f_max, cycles, ref.kappa_j_per_cycle_hz2, ref.name)
    f_max, power = cap.cpu_freq_max_hz, min(tx_power_dbm, cap.max_tx_power_dbm)
    return LearningUe(view.ue_id, False, snr, power, f_max, f_max, cap.cycles_per_sample, cap.kappa_j_per_cycle_hz2)


class PolicyOrders:
    """ASSIGN from testbed/policy: grouping rule ``assign.policy`` (threshold: half the median UE), least-energy
    CPU frequency and TX power; the orders of [assign] when the policy finds no feasible plan (logged).

    The cost-aware ``joint`` rule prices a weak UE's raw upload against symbols over the training: it needs
    ``airtime`` (``LearningBs.airtime``: the link's model of this air, which the
    resource allocation then uses too),
    ``horizon_rounds`` ([bs] num_rounds; None while it runs until stopped) and each UE's sample count (its
    CAPABILITY_REPORT's ``num_local_samples``, else ``shard_samples`` from the BS's own partition). Without
    them a weak UE sends symbols ("no cost estimate")."""

    def __init__(
        self,
        assign: Assignment,
        training: TrainingSpec,
        codec: CodecConfig,
        *,
        airtime: LinkAirtime | None = None,
        horizon_rounds: int | None = None,
        shard_samples: Mapping[str, int] | None = None,
    ) -> None:
        work = training.local_training
        sizes = codec_work_sizes(codec, work, training.raw_block_samples)
        grouping = GroupingConfig(assign.policy)
        self.assign = assign
        cfg = PolicyConfig(
            grouping,
            sizes,
            deadline_factor=assign.deadline_factor,
            threshold_fraction_of_median=MEDIAN_THRESHOLD_FRACTION,
            horizon_rounds=horizon_rounds,
            allocation=AllocationConfig(airtime=airtime) if airtime is not None else AllocationConfig(),
        )
        self.policy = PolicyAssignment(cfg, airtime=airtime, local_samples=shard_samples)

    def orders(self, views: Sequence[UeView]) -> dict[str, Orders]:
        a = self.assign
        for v in views:  # what a UE reports overrides the BS's partition and the board table
            if v.capability is not None:
                self.policy.local_samples[v.ue_id] = v.capability.num_local_samples
                try:
                    self.policy.reports[v.ue_id] = report_from_wire(v.ue_id, v.capability)
                except PolicyError as exc:
                    log.warning("capability report of %s not used: %s", v.ue_id, exc)
                    self.policy.reports.pop(v.ue_id, None)
        try:
            plan = self.policy.plan([learning_profile(v, a.assumed_snr_db, a.tx_power_dbm) for v in views])
        except PolicyError as exc:
            log.warning("policy found no plan (%s); ASSIGN from [assign]", exc)
            return config_orders(a, [v.ue_id for v in views])
        out = {}
        for v, g, u in zip(views, plan.groups, plan.assignments, strict=True):
            budget = v.capability.energy_available_j if v.capability is not None else a.energy_budget_j
            out[v.ue_id] = Orders(u.mode, GROUP_OF_MODE[u.mode], u.cpu_freq_hz, u.tx_power_dbm, budget)
            log.info("policy: %s -> %s (%s)", v.ue_id, u.mode, g.reason)
        return out


class UeFirstInfo:
    """The UE agent's capability, CPU frequency and energy account (see module docstring)."""

    def __init__(
        self,
        ue: UeSection,
        codec: SemanticCodec,
        num_local_samples: int,
        cpufreq: CpuFreqControl | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` None: ``policy.capability.measurement_clock()``, chosen when measuring (a test passes a
        deterministic one)."""
        profiles = default_profiles()
        self.ue, self.codec, self.num_local_samples, self.clock = ue, codec, num_local_samples, clock
        self.profile = profiles.get(ue.board)
        self.speed_scale = profiles.speed_scale(ue.board) if ue.simulated_board else None
        if cpufreq is None:
            cpufreq = SimulatedCpuFreq(self.profile.frequency_table) if ue.simulated_board else _host_cpufreq()
        self.cpufreq = cpufreq
        self.energy_spent_j = 0.0
        self.report: CapabilityReport | None = None

    def capability(self) -> protocol.CapabilityReport:
        """Measure now and build the CAPABILITY_REPORT body. The full measurement (``measure_codec_throughput``,
        about 0.8 s of passes): the UE runs it in its worker thread, never in the event loop."""
        measured = measure_codec_throughput(self.codec, clock=self.clock)
        budget = self.ue.energy_budget_j or None
        self.report = build_report(
            self.ue.ue_id, self.profile, measured, self.cpufreq, speed_scale=self.speed_scale, energy_budget_j=budget
        )
        return report_to_wire(self.report, self.num_local_samples)

    def apply(self, assign: protocol.Assign) -> float:
        """Run at ASSIGN's CPU frequency (snapped up to a step); keeps the current one if it cannot be set."""
        try:
            return self.cpufreq.set_frequency_hz(assign.cpu_freq_hz)
        except PolicyError as exc:
            log.warning("CPU frequency %.0f MHz not applied: %s", assign.cpu_freq_hz / 1e6, exc)
            return self.cpufreq.current_frequency_hz()

    def energy_j(
        self, samples: int, cycle_fraction: float, airtime_s: float, tx_power_dbm: float
    ) -> tuple[float, float]:
        """(compute, radio) joules of ``samples`` at ``cycle_fraction`` of a full training step each at the
        current clock, and ``airtime_s`` on the air at ``tx_power_dbm``: cost.py's CMOS and radio models."""
        f = self.cpufreq.current_frequency_hz()
        cycles = self.report.cycles_per_sample if self.report is not None else PI4_CYCLES_PER_SAMPLE
        compute = compute_energy_j(samples, cycles * cycle_fraction, f, self.profile.kappa_j_per_cycle_hz2)
        return compute, radio_energy_j(tx_power_dbm, airtime_s)

    def plan_work(
        self,
        options: Sequence[WorkOption],
        assign: protocol.Assign,
        tx_power_dbm: float,
        upload_airtime_s: Callable[[int], float],
    ) -> WorkPlan:
        """The most of ``options`` that ASSIGN's per-round budget allows (policy/budget.py), priced at the
        applied clock and ``tx_power_dbm`` (the radio's applied power) with ``upload_airtime_s(bytes)``."""

        def energy(o: WorkOption) -> float:
            return sum(self.energy_j(o.samples, o.cycle_fraction, upload_airtime_s(o.upload_bytes), tx_power_dbm))

        plan = fit_budget(options, energy, assign.energy_budget_j)
        if plan.action != "full":
            log.warning("round energy %.3g J for the full work exceeds the budget of %.3g J: %s", energy(options[0]),
                        assign.energy_budget_j, plan.action)  # fmt: skip
        return plan

    def account(
        self, samples: int, cycle_fraction: float, airtime_s: float, assign: protocol.Assign, tx_power_dbm: float
    ) -> dict[str, float | bool]:
        """Charge one round: ``samples`` at ``cycle_fraction`` of a full training step each at the current clock,
        ``airtime_s`` at the TX power the radio applied. Returns the round's joules next to ASSIGN's per-round
        budget, and the total spent since start-up."""
        compute, radio = self.energy_j(samples, cycle_fraction, airtime_s, tx_power_dbm)
        f = self.cpufreq.current_frequency_hz()
        self.energy_spent_j += compute + radio
        within = compute + radio <= assign.energy_budget_j
        if not within:
            log.warning("round energy %.3g J exceeds the budget of %.3g J", compute + radio, assign.energy_budget_j)
        return {
            "cpu_freq_hz": f,
            "tx_power_dbm": tx_power_dbm,
            "compute_energy_j": compute,
            "radio_energy_j": radio,
            "energy_budget_j": assign.energy_budget_j,
            "within_budget": within,
            "energy_spent_j": self.energy_spent_j,
        }


def _host_cpufreq() -> SysfsCpuFreq:
    """This machine's cpufreq (``simulated_board = false``); a host without it is a config error, so the message
    says which field to change rather than failing later in a round."""
    try:
        return SysfsCpuFreq()
    except PolicyError as exc:
        raise ConfigError(
            f"[ue] simulated_board = false, but {exc}; to run this UE on a machine that is not its board, set "
            "simulated_board = true in [ue]"
        ) from exc
