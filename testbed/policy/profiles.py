"""The one board table (Pi Zero 2, Pi 3, Pi 4, Pi 5, laptop), loaded from ``profiles.toml``.

Scenario UEs, node configs and the policy name a board and look it up here. In the daemons' simulation every
UE runs on the same host, so a profile turns the host's measured throughput into the board's
(``relative_speed``); the in-process engine charges ``cycles_per_mac`` instead. Both use the board's cpufreq
table, kappa and radio limits. Each number and its source live in the TOML file beside it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from testbed.errors import PolicyError
from testbed.policy.cpufreq import FrequencyTable

_MHZ = 1e6


@dataclass(frozen=True)
class UeProfile:
    """One board type. Frequencies in Hz; ``cpu_freq_step_hz == 0`` means continuous frequency."""

    name: str
    cpu_freq_min_hz: float
    cpu_freq_max_hz: float
    cpu_freq_step_hz: float
    relative_speed: float  # throughput at cpu_freq_max_hz relative to a Pi 4 at 1.5 GHz
    cycles_per_mac: float  # effective cycles per multiply-accumulate of codec training (the engine's speed)
    kappa_j_per_cycle_hz2: float
    memory_bytes: int
    max_tx_power_dbm: float
    min_tx_power_dbm: float
    energy_budget_j: float
    source: str
    tx_draw_offset_db: float = 0.0  # draw while transmitting above the RF output (cost.radio_energy_j)

    def __post_init__(self) -> None:
        positive = {
            "cpu_freq_min_hz": self.cpu_freq_min_hz,
            "relative_speed": self.relative_speed,
            "cycles_per_mac": self.cycles_per_mac,
            "kappa_j_per_cycle_hz2": self.kappa_j_per_cycle_hz2,
            "memory_bytes": self.memory_bytes,
            "energy_budget_j": self.energy_budget_j,
        }
        for field, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise PolicyError(f"profile {self.name!r}: {field}={value!r} must be finite and > 0")
        if not self.cpu_freq_min_hz <= self.cpu_freq_max_hz:
            raise PolicyError(
                f"profile {self.name!r}: cpu_freq_min_hz={self.cpu_freq_min_hz:g} exceeds "
                f"cpu_freq_max_hz={self.cpu_freq_max_hz:g}"
            )
        if self.cpu_freq_step_hz < 0:
            raise PolicyError(f"profile {self.name!r}: cpu_freq_step_hz={self.cpu_freq_step_hz:g} must be >= 0")
        if not self.min_tx_power_dbm <= self.max_tx_power_dbm:
            raise PolicyError(f"profile {self.name!r}: min_tx_power_dbm exceeds max_tx_power_dbm")

    @property
    def frequency_table(self) -> FrequencyTable:
        """The board's cpufreq table (continuous when ``cpu_freq_step_hz == 0``)."""
        if self.cpu_freq_step_hz == 0:
            return FrequencyTable(self.cpu_freq_min_hz, self.cpu_freq_max_hz)
        n = round((self.cpu_freq_max_hz - self.cpu_freq_min_hz) / self.cpu_freq_step_hz)
        steps = tuple(self.cpu_freq_min_hz + i * self.cpu_freq_step_hz for i in range(n + 1))
        return FrequencyTable(self.cpu_freq_min_hz, steps[-1], steps)


@dataclass(frozen=True)
class ProfileSet:
    """All profiles plus the name of the profile the simulation host stands for."""

    profiles: dict[str, UeProfile]
    host_profile: str

    def get(self, name: str) -> UeProfile:
        """The profile called ``name``, with an error listing the valid names."""
        try:
            return self.profiles[name]
        except KeyError:
            raise PolicyError(
                f"unknown board {name!r}; choose one of {', '.join(self.profiles)} (testbed/policy/profiles.toml)"
            ) from None

    def speed_scale(self, name: str) -> float:
        """Factor that turns the host's measured samples/s into profile ``name``'s at its maximum frequency."""
        return self.get(name).relative_speed / self.get(self.host_profile).relative_speed


def _profile(name: str, table: dict[str, Any], radio: dict[str, Any]) -> UeProfile:
    try:
        return UeProfile(
            name=name,
            cpu_freq_min_hz=float(table["cpu_freq_min_mhz"]) * _MHZ,
            cpu_freq_max_hz=float(table["cpu_freq_max_mhz"]) * _MHZ,
            cpu_freq_step_hz=float(table["cpu_freq_step_mhz"]) * _MHZ,
            relative_speed=float(table["relative_speed"]),
            cycles_per_mac=float(table["cycles_per_mac"]),
            kappa_j_per_cycle_hz2=float(table["kappa_j_per_cycle_hz2"]),
            memory_bytes=int(table["memory_mb"]) * 1024 * 1024,
            max_tx_power_dbm=float(table.get("max_tx_power_dbm", radio["max_tx_power_dbm"])),
            min_tx_power_dbm=float(table.get("min_tx_power_dbm", radio["min_tx_power_dbm"])),
            energy_budget_j=float(table["energy_budget_j"]),
            source=str(table["source"]).strip(),
            tx_draw_offset_db=float(table.get("tx_draw_offset_db", radio.get("tx_draw_offset_db", 0.0))),
        )
    except PolicyError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"profile {name!r} is missing or has a malformed field: {exc!r}") from exc


def load_profiles(path: Path | None = None) -> ProfileSet:
    """Read a profiles TOML (default: the one shipped in this package) into validated profiles."""
    try:
        text = path.read_text() if path else resources.files(__package__).joinpath("profiles.toml").read_text()
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read UE profiles from {path or 'package data'}: {exc}") from exc
    radio = data.get("radio", {})
    tables = data.get("profiles", {})
    if not tables:
        raise PolicyError(f"no [profiles.*] tables in {path or 'profiles.toml'}")
    profiles = {name: _profile(name, table, radio) for name, table in tables.items()}
    host = str(data.get("host_profile", ""))
    if host not in profiles:
        raise PolicyError(f"host_profile={host!r} must name one of the profiles: {', '.join(profiles)}")
    return ProfileSet(profiles, host)


@cache
def default_profiles() -> ProfileSet:
    """The shipped profiles (cached: the file is read once per process)."""
    return load_profiles()
