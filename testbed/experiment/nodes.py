"""What the in-process engine hands the node cores instead of a real board: the [bs] of a scenario, the
scheme as the BS's assigner (a policy scheme's UEs choose their modes from FIRST_INFO as the daemons' do), and
a capability report from the board table. The virtual time each job takes is the daemons' rule on the
virtual air (testbed/node/jobtime.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from testbed.control import protocol
from testbed.experiment.scenario import Scenario
from testbed.learning.assignment import UeProfile
from testbed.learning.rounds import RoundRunner
from testbed.learning.schemes import Scheme
from testbed.node.assigners import Assigner, FixedAssigner, Orders, PolicyAssigner, UeView
from testbed.node.config import BsSection, UeSection
from testbed.node.first_info import ChoiceInputs, UeFirstInfo
from testbed.policy.assign import PolicyAssignment
from testbed.policy.capability import ThroughputMeasurement, build_report
from testbed.policy.choice import GROUP_OF_MODE
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
    """The scheme as the BS's assigner: a policy scheme offers its rule and the UEs choose (PolicyAssigner,
    planned from the scenario's boards and the links as measured); a baseline names each UE's mode for the round
    the runner is at (FixedAssigner)."""
    by_name = {p.name: p for p in profiles}
    budgets = {p.name: default_profiles().get(p.board).energy_budget_j if p.board else 0.0 for p in profiles}

    def orders(views: Sequence[UeView]) -> dict[str, Orders]:
        assigned = scheme.policy.assign(runner.round_index, profiles)
        out = {p.name: Orders(a.mode, GROUP_OF_MODE[a.mode], a.cpu_freq_hz, a.tx_power_dbm, budgets[p.name])
               for p, a in zip(profiles, assigned, strict=True)}  # fmt: skip
        return {v.ue_id: out[v.ue_id] for v in views if v.ue_id in by_name}

    if isinstance(scheme.policy, PolicyAssignment):
        return PolicyAssigner(scheme.policy, assumed_snr_db=0.0, tx_power_dbm=0.0, profiles=profiles, budgets=budgets)
    return FixedAssigner(orders)


class EngineFirstInfo(UeFirstInfo):
    """A UE's first information on a simulated board: the report from the board table, not a measurement."""

    def __init__(self, profile: UeProfile, num_local_samples: int, choice_inputs: ChoiceInputs) -> None:
        board = default_profiles().get(profile.board)
        section = UeSection(ue_id=profile.name, node_id=1, board=profile.board, simulated_board=True)
        super().__init__(section, None, num_local_samples,  # type: ignore[arg-type]  # nothing to time
                         cpufreq=SimulatedCpuFreq(board.frequency_table), choice_inputs=choice_inputs)  # fmt: skip
        # the scenario's TX power is the UE's whole radio draw (docs/learning.md): its range is the board's up to it
        power = profile.tx_power_dbm
        self.profile = dataclasses.replace(board, max_tx_power_dbm=power, tx_draw_offset_db=0.0,
                                           min_tx_power_dbm=min(board.min_tx_power_dbm, power))  # fmt: skip
        self.profile_ue = profile

    def capability(self) -> protocol.CapabilityReport:
        rate = self.cpufreq.current_frequency_hz() / self.profile_ue.cycles_per_sample
        measured = ThroughputMeasurement(rate, (rate,), batch_size=1, clock="board table")
        self.report = build_report(self.ue.ue_id, self.profile, measured, self.cpufreq)
        return report_to_wire(self.report, self.num_local_samples)
