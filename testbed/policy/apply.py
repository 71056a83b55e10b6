"""Applying an allocation: TX power -> radio gain through the board's calibration, CPU frequency through
cpufreq (a board) or the simulated clock; then charging what the round actually cost against the budget.

Nothing is set silently wrong: a calibration that returns a gain outside the radio's range, or a frequency
the kernel does not take, raises PolicyError before or instead of the setting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from testbed.errors import PolicyError
from testbed.policy.allocation import RoundWork, UeAllocation, UeResources, evaluate
from testbed.policy.cpufreq import CpuFreqControl
from testbed.radio.calibration import TxCalibration

log = logging.getLogger(__name__)

# AD9363 TX attenuation 0..89.75 dB (datasheet); pyadi-iio exposes it as tx_hardwaregain_chan0 in -89.75..0 dB.
PLUTO_TX_GAIN_RANGE_DB = (-89.75, 0.0)


class TxGainCalibration(Protocol):
    """Per-board calibration: the hardware TX gain (dB) at which the radio emits ``tx_power_dbm``."""

    def __call__(self, tx_power_dbm: float) -> float: ...


def pluto_calibration(cal: TxCalibration, serial: str | None, center_freq_hz: float) -> TxGainCalibration:
    """The radio layer's calibration file (testbed/radio/calibration.py) as a TxGainCalibration for one board
    at one carrier: gain = tx_power_dbm - (output power at 0 dB gain), the mapping the Pluto backend applies."""
    offset_dbm = cal.power_at_0db_dbm(serial, center_freq_hz)
    return lambda tx_power_dbm: tx_power_dbm - offset_dbm


@dataclass(frozen=True)
class AppliedSetting:
    """What was actually set on the UE (the CPU frequency may be a step above the plan)."""

    ue_id: str
    cpu_freq_hz: float
    tx_power_dbm: float
    tx_gain_db: float


def apply_allocation(
    allocation: UeAllocation,
    calibration: TxGainCalibration,
    set_tx_gain_db: Callable[[float], None],
    cpufreq: CpuFreqControl,
    gain_range_db: tuple[float, float] = PLUTO_TX_GAIN_RANGE_DB,
) -> AppliedSetting:
    """Set the CPU frequency, then the TX gain that gives the planned power; PolicyError if either is impossible.
    The gain is checked before anything is touched, so a bad calibration changes nothing."""
    gain = calibration(allocation.tx_power_dbm)
    lo, hi = gain_range_db
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and lo <= gain <= hi):
        raise PolicyError(
            f"UE {allocation.ue_id!r}: calibration maps {allocation.tx_power_dbm:.2f} dBm to gain {gain!r} dB, outside "
            f"the radio's {lo}..{hi} dB; re-calibrate the board or lower the power limits"
        )
    freq = cpufreq.set_frequency_hz(allocation.cpu_freq_hz)
    set_tx_gain_db(float(gain))
    return AppliedSetting(allocation.ue_id, freq, allocation.tx_power_dbm, float(gain))


@dataclass(frozen=True)
class EnergyRecord:
    """Energy one UE actually spent in one round, next to its budget (joules)."""

    ue_id: str
    round_index: int
    compute_energy_j: float
    radio_energy_j: float
    energy_budget_j: float

    @property
    def energy_j(self) -> float:
        return self.compute_energy_j + self.radio_energy_j

    @property
    def within_budget(self) -> bool:
        return self.energy_j <= self.energy_budget_j


def record_round(
    round_index: int, applied: AppliedSetting, ue: UeResources, work: RoundWork, airtime_s: float
) -> EnergyRecord:
    """Charge the round at the frequency actually set and the airtime actually used (repairs included)."""
    cost = evaluate(ue, work, applied.cpu_freq_hz, applied.tx_power_dbm, None, airtime_s, airtime_s)
    record = EnergyRecord(applied.ue_id, round_index, cost.compute_energy_j, cost.radio_energy_j, ue.energy_budget_j)
    if not record.within_budget:
        log.warning(
            "UE %s spent %.3g J in round %d, over its budget of %.3g J",
            record.ue_id,
            record.energy_j,
            round_index,
            record.energy_budget_j,
        )
    return record
