"""Between the policy's types and the control plane's messages (testbed/control/protocol.py).

FIRST_INFO carries a ``SentPolicy`` and one UE's ``Allocation`` (choice.py); the UE refuses, with the reason,
a rule, mode or unit it does not know (``first_info_from_wire`` raises PolicyError), and MODE_CHOICE carries
its ``Choice``.

The wire CAPABILITY_REPORT is the whole report: the CPU by min/max/step and cycles per sample, memory, energy,
kappa and the TX power range, so the BS plans with what the UE said and needs no board table. Only the
measured ``samples_per_s`` at the current clock travels as cycles per sample (the BS takes the UE at its maximum
clock). A table whose steps are not evenly spaced cannot be sent as min/max/step and is refused rather than
approximated.
"""

from __future__ import annotations

import math

from testbed.control import protocol
from testbed.errors import PolicyError
from testbed.mode import Mode
from testbed.policy.capability import CapabilityReport
from testbed.policy.choice import CAPABILITY_UNIT, FIXED_RULE, Allocation, Choice, SentPolicy
from testbed.policy.cpufreq import FrequencyTable
from testbed.policy.grouping import GROUPING_RULES, GroupingConfig

_STEP_REL_TOL = 1e-6


def _uniform_step_hz(table: FrequencyTable) -> float:
    """The table's step (0 for continuous); PolicyError when the steps are not evenly spaced."""
    if table.continuous or len(table.steps_hz) == 1:
        return 0.0
    steps = table.steps_hz
    step = steps[1] - steps[0]
    if any(abs((b - a) - step) > _STEP_REL_TOL * step for a, b in zip(steps, steps[1:], strict=False)):
        raise PolicyError(f"CPU frequency steps {steps} are not evenly spaced; the wire format carries min/max/step")
    return step


def report_to_wire(report: CapabilityReport, num_local_samples: int) -> protocol.CapabilityReport:
    """The UE's CAPABILITY_REPORT body (validated first, so a poisoned report never leaves the UE)."""
    report.validate()
    table = report.frequency_table
    return protocol.CapabilityReport(
        cpu_freq_min_hz=table.min_hz,
        cpu_freq_max_hz=table.max_hz,
        cpu_freq_step_hz=_uniform_step_hz(table),
        cycles_per_sample=report.cycles_per_sample,
        energy_available_j=report.energy_budget_j,
        max_tx_power_dbm=report.max_tx_power_dbm,
        num_local_samples=num_local_samples,
        memory_bytes=report.available_memory_bytes,
        kappa_j_per_cycle_hz2=report.kappa_j_per_cycle_hz2,
        min_tx_power_dbm=report.min_tx_power_dbm,
        tx_draw_offset_db=report.tx_draw_offset_db,
    )


def report_from_wire(ue_id: str, msg: protocol.CapabilityReport) -> CapabilityReport:
    """The BS's view of a UE from its CAPABILITY_REPORT (validated: PolicyError names the bad field)."""
    if not (math.isfinite(msg.cycles_per_sample) and msg.cycles_per_sample > 0):
        raise PolicyError(f"UE {ue_id!r} reported cycles_per_sample={msg.cycles_per_sample!r}; it must be > 0")
    lo, hi, step = msg.cpu_freq_min_hz, msg.cpu_freq_max_hz, msg.cpu_freq_step_hz
    if step > 0:
        n = round((hi - lo) / step)
        if abs(lo + n * step - hi) > _STEP_REL_TOL * hi:
            raise PolicyError(f"UE {ue_id!r}: {lo:g}..{hi:g} Hz is not a whole number of {step:g} Hz steps")
        table = FrequencyTable(lo, hi, tuple(lo + i * step for i in range(n)) + (hi,))
    else:
        table = FrequencyTable(lo, hi)
    report = CapabilityReport(
        ue_id=ue_id,
        samples_per_s=hi / msg.cycles_per_sample,
        cpu_freq_hz=hi,
        frequency_table=table,
        available_memory_bytes=msg.memory_bytes,
        energy_budget_j=msg.energy_available_j,
        kappa_j_per_cycle_hz2=msg.kappa_j_per_cycle_hz2,
        min_tx_power_dbm=msg.min_tx_power_dbm,
        max_tx_power_dbm=msg.max_tx_power_dbm,
        tx_draw_offset_db=msg.tx_draw_offset_db,
    )
    report.validate()
    return report


def first_info_to_wire(policy: SentPolicy, allocation: Allocation, uplink_snr_db: float | None) -> protocol.FirstInfo:
    """One UE's FIRST_INFO: the policy, its allocation, and the BS's effective SNR of its uplink (None before
    the BS has heard it)."""
    g = policy.grouping
    groups = [protocol.GroupMode(group, str(mode)) for mode, group in policy.group_of_mode.items()]
    return protocol.FirstInfo(
        revision=policy.revision,
        rule=policy.rule,
        groups=groups,
        capability_unit=CAPABILITY_UNIT,
        capability_threshold=g.capability_threshold_samples_per_s,
        deadline_s=policy.deadline_s,
        good_channel_snr_db=g.good_channel_snr_db,
        raw_upload_budget_s=g.raw_upload_budget_s,
        horizon_rounds=policy.horizon_rounds or 0,
        num_ues=policy.num_ues,
        tx_power_dbm=allocation.tx_power_dbm,
        energy_budget_j=allocation.energy_budget_j,
        cpu_freq_hz=allocation.cpu_freq_hz,
        uplink_snr_db=None if uplink_snr_db is None else min(max(uplink_snr_db, -50.0), 80.0),
        assigned_mode="" if policy.assigned_mode is None else str(policy.assigned_mode),
    )


def _mode(name: str, where: str) -> Mode:
    try:
        return Mode(name)
    except ValueError:
        known = ", ".join(m.value for m in Mode)
        raise PolicyError(f"{where} names mode {name!r}, which this UE does not know ({known})") from None


def first_info_from_wire(msg: protocol.FirstInfo) -> tuple[SentPolicy, Allocation]:
    """The UE's reading of FIRST_INFO; PolicyError says what it cannot apply (rule, unit, mode)."""
    if msg.capability_unit != CAPABILITY_UNIT:
        raise PolicyError(f"capability threshold in {msg.capability_unit!r}; this UE measures {CAPABILITY_UNIT}")
    if msg.rule != FIXED_RULE and msg.rule not in GROUPING_RULES:
        known = ", ".join([*GROUPING_RULES, FIXED_RULE])
        raise PolicyError(f"grouping rule {msg.rule!r} is unknown to this UE ({known})")
    groups = {_mode(g.mode, f"group {g.group}"): g.group for g in msg.groups}
    assigned = None
    if msg.rule == FIXED_RULE:
        if not msg.assigned_mode:
            raise PolicyError("rule 'fixed' without an assigned_mode")
        assigned = _mode(msg.assigned_mode, "assigned_mode")
    grouping = GroupingConfig("joint" if assigned is not None else msg.rule, msg.capability_threshold,
                              msg.good_channel_snr_db, raw_upload_budget_s=msg.raw_upload_budget_s)  # fmt: skip
    policy = SentPolicy(msg.revision, grouping, msg.deadline_s, msg.horizon_rounds or None, msg.num_ues, groups,
                        assigned)  # fmt: skip
    if assigned is not None:
        policy.group(assigned)  # the assigned mode must have a group
    return policy, Allocation(msg.tx_power_dbm, msg.energy_budget_j, msg.cpu_freq_hz)


def choice_to_wire(revision: int, choice: Choice, channel_source: str) -> protocol.ModeChoice:
    snr = choice.channel_snr_db
    return protocol.ModeChoice(revision, choice.mode, choice.group, min(choice.capability_samples_per_s, 1e12),
                               None if snr is None else min(max(snr, -50.0), 80.0), channel_source,  # type: ignore[arg-type]
                               choice.reason[:256])  # fmt: skip


def choice_from_wire(msg: protocol.ModeChoice) -> Choice:
    return Choice(msg.mode, msg.group, msg.capability, msg.channel_snr_db, msg.reason)
