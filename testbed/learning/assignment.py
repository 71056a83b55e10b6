"""Who does what in a round: each UE's training mode, CPU frequency and TX power.

This is the seam where testbed/policy plugs in: a policy implements ``AssignmentPolicy.assign``; the
fixed assignments below (every baseline and the hybrid method with a fixed split) are its first
implementations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from testbed.errors import ConfigError
from testbed.mode import Mode


@dataclass(frozen=True)
class UeProfile:
    """What the BS knows about one UE (from its capability and channel reports).

    snr_db : Es/N0 of its link at ``tx_power_dbm`` (uplink and downlink taken as reciprocal).
    cpu_freq_hz : nominal CPU clock; cycles_per_sample : cycles for one sample's forward + backward pass.
    kappa : effective switched capacitance [J / (cycle Hz^2)] of the CMOS energy model (cost.py).
    max_cpu_freq_hz : the highest clock a policy may ask for.
    board : the board's name in the one board table (testbed/policy/profiles.toml; "" when not a listed board),
        where a policy finds what this profile lacks (cpufreq steps, memory, energy budget).
    channel_gain : |H_k|^2 of its channel per data subcarrier, mean 1 (``snr_db`` stays the mean); None: flat.
        Opaque here: only the airtime model reads it (testbed/link/airtime.py, EESM).
    """

    name: str
    weak: bool
    snr_db: float
    tx_power_dbm: float
    cpu_freq_hz: float
    max_cpu_freq_hz: float
    cycles_per_sample: float
    kappa: float
    board: str = ""
    channel_gain: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for field in ("snr_db", "tx_power_dbm"):
            if not math.isfinite(getattr(self, field)):
                raise ConfigError(f"UE {self.name}: {field} must be finite")
        for field in ("cpu_freq_hz", "max_cpu_freq_hz", "cycles_per_sample", "kappa"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"UE {self.name}: {field}={value!r} must be a finite positive number")
        if self.cpu_freq_hz > self.max_cpu_freq_hz:
            raise ConfigError(f"UE {self.name}: cpu_freq_hz exceeds max_cpu_freq_hz")


@dataclass(frozen=True)
class UeAssignment:
    """One UE's orders for one round."""

    mode: Mode
    cpu_freq_hz: float
    tx_power_dbm: float


class AssignmentPolicy(Protocol):
    """Decides every UE's assignment at the start of a round."""

    def assign(self, round_index: int, ues: Sequence[UeProfile]) -> list[UeAssignment]:
        """One assignment per UE, in ``ues`` order."""
        ...


@dataclass(frozen=True)
class FixedAssignment:
    """Weak UEs get ``weak_mode``, strong UEs ``strong_mode``; nominal CPU clock and TX power."""

    weak_mode: Mode
    strong_mode: Mode

    def assign(self, round_index: int, ues: Sequence[UeProfile]) -> list[UeAssignment]:
        return [
            UeAssignment(self.weak_mode if u.weak else self.strong_mode, u.cpu_freq_hz, u.tx_power_dbm) for u in ues
        ]
