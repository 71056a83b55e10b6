"""Between the policy's types and the control plane's messages (testbed/control/protocol.py).

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
from testbed.policy.capability import CapabilityReport
from testbed.policy.cpufreq import FrequencyTable

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
    )
    report.validate()
    return report
