"""What the in-process engine hands the node cores instead of a real board: the [bs] of a scenario, the
scheme's orders, a capability report from the board table, and the virtual time each job takes.

Compute time: a UE's training step costs its work (samples x the fraction of a full step, from the step
itself) x its board's cycles per sample at the CPU clock ASSIGN set (testbed/learning/cost.py's model); the
BS's step costs the samples it trained on at the scenario's BS board (``[clock] bs_board``). A capability
measurement costs nothing: the engine's UE knows its board.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from testbed.control import protocol
from testbed.experiment.network import JobTime
from testbed.experiment.scenario import Scenario
from testbed.learning.assignment import UeProfile
from testbed.learning.rounds import RoundRunner
from testbed.learning.schemes import Scheme
from testbed.node.actions import StartJob
from testbed.node.bs_core import Assigner
from testbed.node.config import BsSection, UeSection
from testbed.node.first_info import GROUP_OF_MODE, Orders, UeFirstInfo, UeView
from testbed.policy.capability import ThroughputMeasurement, build_report
from testbed.policy.cpufreq import SimulatedCpuFreq
from testbed.policy.profiles import default_profiles
from testbed.policy.wire import report_to_wire

NO_DEADLINE_S = 86_400.0  # a scheme without a deadline waits for every UE (the protocol's largest deadline)


def bs_section(scenario: Scenario) -> BsSection:
    """The BS of the scenario: UE i is link node i + 1; every UE must be live before a round; a round counts
    whenever one upload arrived (the engine's schemes drop the late, never the round); no pause between rounds."""
    ues = {ue.name: i + 1 for i, ue in enumerate(scenario.ues)}
    return BsSection(ues=ues, min_ues=len(ues), min_fraction=1e-9, round_gap_s=0.0, deadline_s=NO_DEADLINE_S,
                     state_dir="")  # fmt: skip


def assigner_for(scheme: Scheme, profiles: Sequence[UeProfile], runner: RoundRunner) -> Assigner:
    """The scheme's orders for the round the runner is at, as ASSIGN fields."""
    by_name = {p.name: p for p in profiles}

    def orders(views: Sequence[UeView]) -> dict[str, Orders]:
        assigned = scheme.policy.assign(runner.round_index, profiles)
        out = {}
        for p, a in zip(profiles, assigned, strict=True):
            budget = default_profiles().get(p.board).energy_budget_j if p.board else 0.0
            out[p.name] = Orders(a.mode, GROUP_OF_MODE[a.mode], a.cpu_freq_hz, a.tx_power_dbm, budget)
        return {v.ue_id: out[v.ue_id] for v in views if v.ue_id in by_name}

    return orders


class EngineFirstInfo(UeFirstInfo):
    """A UE's first information on a simulated board: the report from the board table, not a measurement."""

    def __init__(self, profile: UeProfile, num_local_samples: int) -> None:
        board = default_profiles().get(profile.board)
        section = UeSection(ue_id=profile.name, node_id=1, board=profile.board, simulated_board=True)
        super().__init__(section, None, num_local_samples,  # type: ignore[arg-type]  # nothing to time
                         cpufreq=SimulatedCpuFreq(board.frequency_table))  # fmt: skip
        self.profile_ue = profile

    def capability(self) -> protocol.CapabilityReport:
        rate = self.cpufreq.current_frequency_hz() / self.profile_ue.cycles_per_sample
        measured = ThroughputMeasurement(rate, (rate,), batch_size=1, clock="board table")
        self.report = build_report(self.ue.ue_id, self.profile, measured, self.cpufreq)
        return report_to_wire(self.report, self.num_local_samples)


def ue_job_time(profile: UeProfile, first_info: EngineFirstInfo) -> JobTime:
    """Virtual seconds of this UE's jobs: training at the applied clock; the capability report is free."""

    def seconds(job: StartJob, result: Any) -> float:
        if job.kind != "train" or result is None:
            return 0.0
        samples, fraction = result.work
        return samples * fraction * profile.cycles_per_sample / first_info.cpufreq.current_frequency_hz()

    return seconds


def bs_job_time(runner: RoundRunner) -> JobTime:
    """Virtual seconds of the BS's training step: the samples it trained on, at its board."""

    def seconds(job: StartJob, result: Any) -> float:
        learned = result.get("training", {}) if isinstance(result, dict) else {}
        return runner.cfg.clock.bs_compute_s(learned.get("bs_train_samples", 0.0))

    return seconds
