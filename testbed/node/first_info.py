"""The UE's side of the first information: its capability, its choice of mode, its CPU clock and its energy.

``UeFirstInfo`` measures the UE's training throughput at start-up and whenever the BS sends
CAPABILITY_ENQUIRY, in the worker thread (``testbed.policy.capability.measure_codec_throughput`` ->
``build_report`` -> ``policy.wire.report_to_wire``); on FIRST_INFO it applies the BS's policy to its own
figures (testbed/policy/choice.py: that report, read back as the BS reads it, and the effective SNR of its
link) and returns MODE_CHOICE, or refuses first information it cannot apply (unknown rule, mode or unit; an
allocation outside its board's ranges) and keeps the last valid one; it applies ASSIGN's CPU frequency through
the policy's cpufreq interface (``SimulatedCpuFreq`` for a simulated board, Linux cpufreq otherwise), fits each
round's work to ASSIGN's energy budget before training (``plan_work``, testbed/policy/budget.py) and charges
what the round spent (cost.py's CMOS and radio models, at the clock and the TX power actually applied) next to
that budget. The BS's side is testbed/node/assigners.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from testbed.control import protocol
from testbed.errors import ConfigError, PolicyError
from testbed.learning.cost import compute_energy_j, radio_energy_j
from testbed.learning.encoder_np import NumpyEncoder
from testbed.link.airtime import LinkAirtime
from testbed.mode import Mode
from testbed.node.assigners import PI4_CYCLES_PER_SAMPLE
from testbed.node.config import UeSection
from testbed.policy.allocation import AllocationConfig
from testbed.policy.budget import WorkOption, WorkPlan, fit_budget
from testbed.policy.capability import (
    CapabilityReport,
    build_report,
    measure_codec_throughput,
    measure_encoder_throughput,
)
from testbed.policy.choice import Allocation, CostInputs, DataTerms, choose
from testbed.policy.cpufreq import CpuFreqControl, SimulatedCpuFreq, SysfsCpuFreq
from testbed.policy.profiles import default_profiles
from testbed.policy.wire import choice_to_wire, first_info_from_wire, report_from_wire, report_to_wire
from testbed.policy.work import WorkSizes

if TYPE_CHECKING:
    from testbed.learning.codec import SemanticCodec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChoiceInputs:
    """What a UE needs to apply the cost-aware rule as the BS does: the work of each mode (its codec and
    [training]), the airtime of the uplink shared by FIRST_INFO's ``num_ues`` (the daemon: its [air]'s) and
    what its data allow (privacy, streaming; the BS's PolicyAssignment must hold the same terms)."""

    work: WorkSizes
    airtime_for: Callable[[int], LinkAirtime]
    terms: DataTerms = DataTerms()


class UeFirstInfo:
    """The UE agent's capability, CPU frequency and energy account (see module docstring)."""

    def __init__(
        self,
        ue: UeSection,
        codec: SemanticCodec | NumpyEncoder,
        num_local_samples: int,
        cpufreq: CpuFreqControl | None = None,
        clock: Callable[[], float] | None = None,
        choice_inputs: ChoiceInputs | None = None,
    ) -> None:
        """``clock`` None: ``policy.capability.measurement_clock()``, chosen when measuring (a test passes a
        deterministic one). ``choice_inputs`` None: the UE can apply only rules that need no cost model (the
        ``joint`` rule then finds no cost estimate, as the BS would without them). ``codec``: the whole model, or
        a UE without torch's ``NumpyEncoder`` (it measures the encoder forward, and refuses to train)."""
        profiles = default_profiles()
        self.ue, self.codec, self.num_local_samples, self.clock = ue, codec, num_local_samples, clock
        self.choice_inputs = choice_inputs
        self.first_info: protocol.FirstInfo | None = None  # the last FIRST_INFO it could apply
        self.profile = profiles.get(ue.board)
        if ue.tx_draw_offset_db is not None:
            self.profile = dataclasses.replace(self.profile, tx_draw_offset_db=ue.tx_draw_offset_db)
        self.speed_scale = profiles.speed_scale(ue.board) if ue.simulated_board else None
        if cpufreq is None:
            cpufreq = SimulatedCpuFreq(self.profile.frequency_table) if ue.simulated_board else _host_cpufreq()
        self.cpufreq = cpufreq
        self.energy_spent_j = 0.0
        self.report: CapabilityReport | None = None

    def capability(self) -> protocol.CapabilityReport:
        """Measure now and build the CAPABILITY_REPORT body. The full measurement (``measure_codec_throughput``,
        about 0.8 s of passes): the UE runs it in its worker thread, never in the event loop."""
        if isinstance(self.codec, NumpyEncoder):
            measured = measure_encoder_throughput(self.codec, clock=self.clock)
        else:
            measured = measure_codec_throughput(self.codec, clock=self.clock)
        budget = self.ue.energy_budget_j or None
        self.report = build_report(
            self.ue.ue_id, self.profile, measured, self.cpufreq, speed_scale=self.speed_scale, energy_budget_j=budget
        )
        return report_to_wire(self.report, self.num_local_samples)

    def choose(self, msg: protocol.FirstInfo, downlink_snr_db: float | None) -> protocol.ModeChoice:
        """Apply FIRST_INFO to this UE's own figures: its last capability report, read back as the BS reads it
        (so both sides apply the rule to the same numbers), and the effective SNR of its uplink as the BS sent
        it, else of its own downlink measurement (``downlink_snr_db``; a TDD link is reciprocal). PolicyError
        says why the UE cannot apply it; the last valid first information is kept."""
        if self.report is None:
            raise PolicyError("this UE has not measured its capability yet")
        policy, allocation = first_info_from_wire(msg)
        self._check_allocation(allocation)
        report = report_from_wire(self.ue.ue_id, report_to_wire(self.report, self.num_local_samples))
        if msg.uplink_snr_db is not None:
            snr, source = msg.uplink_snr_db, "uplink"
        elif downlink_snr_db is not None:
            snr, source = min(max(downlink_snr_db, -50.0), 80.0), "downlink"
        else:
            snr, source = None, "none"
        chosen = choose(policy, report, snr, report.max_tx_power_dbm, self._cost_inputs(policy.num_ues))
        if chosen.mode is Mode.DISTRIBUTED and isinstance(self.codec, NumpyEncoder):
            raise PolicyError(f"this UE runs without torch and cannot train in {Mode.DISTRIBUTED} mode "
                              f"({chosen.reason}); install the learn extra on it, or have the BS assign it a "
                              "centralized mode")  # fmt: skip
        self.first_info = msg
        return choice_to_wire(policy.revision, chosen, source)

    def _cost_inputs(self, num_ues: int) -> CostInputs:
        c = self.choice_inputs
        if c is None:
            return CostInputs(WorkSizes(0, 0, 0, 0, 0.0), None, None)
        airtime = c.airtime_for(num_ues)
        return CostInputs(c.work, self.num_local_samples, airtime, AllocationConfig(airtime=airtime), c.terms)

    def _check_allocation(self, a: Allocation) -> None:
        """Refuse an allocation this board cannot run: a clock outside its cpufreq range, a TX power outside
        its radio's range."""
        table, p = self.cpufreq.table(), self.profile
        if not table.min_hz * (1 - 1e-9) <= a.cpu_freq_hz <= table.max_hz * (1 + 1e-9):
            raise PolicyError(f"CPU frequency {a.cpu_freq_hz / 1e6:.0f} MHz is outside this board's "
                              f"{table.min_hz / 1e6:.0f}..{table.max_hz / 1e6:.0f} MHz")  # fmt: skip
        if not p.min_tx_power_dbm - 1e-9 <= a.tx_power_dbm <= p.max_tx_power_dbm + 1e-9:
            raise PolicyError(f"TX power {a.tx_power_dbm:.2f} dBm is outside this radio's "
                              f"{p.min_tx_power_dbm:.2f}..{p.max_tx_power_dbm:.2f} dBm")  # fmt: skip

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
        return compute, radio_energy_j(tx_power_dbm, airtime_s, self.profile.tx_draw_offset_db)

    def plan_work(
        self,
        options: Sequence[WorkOption],
        assign: protocol.Assign,
        tx_power_dbm: float,
        upload_airtime_s: Callable[[WorkOption], float],
    ) -> WorkPlan:
        """The most of ``options`` that ASSIGN's per-round budget allows (policy/budget.py), priced at the
        applied clock and ``tx_power_dbm`` (the radio's applied power) with ``upload_airtime_s(option)``."""

        def energy(o: WorkOption) -> float:
            return sum(self.energy_j(o.samples, o.cycle_fraction, upload_airtime_s(o), tx_power_dbm))

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
