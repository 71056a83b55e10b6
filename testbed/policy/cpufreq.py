"""CPU frequency: the table a UE can run at, and setting it on a board (Linux cpufreq) or in simulation.

Linux cpufreq (Documentation/admin-guide/pm/cpufreq.rst) exposes per CPU, in kHz, under
``/sys/devices/system/cpu/cpuN/cpufreq/``: ``scaling_available_frequencies`` (drivers with a table, e.g.
raspberrypi-cpufreq in 100 MHz steps) or only ``cpuinfo_min_freq``/``cpuinfo_max_freq`` (continuous
drivers such as intel_pstate), ``scaling_cur_freq``, ``scaling_governor``, ``scaling_setspeed`` (written
under the ``userspace`` governor) and ``scaling_max_freq`` (a cap; with the ``performance`` governor it pins
the frequency). A requested frequency is snapped UP to the next available step, so a deadline met in the
plan is still met on the board.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from testbed.errors import PolicyError

_KHZ = 1e3
# Relative slack when comparing a frequency with a table edge (float round-off of kHz <-> Hz).
_REL_TOL = 1e-9
SYSFS_CPU_ROOT = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class FrequencyTable:
    """Frequencies a CPU can run at: ``steps_hz`` ascending, or empty for continuous min..max."""

    min_hz: float
    max_hz: float
    steps_hz: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_hz) and math.isfinite(self.max_hz) and 0 < self.min_hz <= self.max_hz):
            raise PolicyError(
                f"CPU frequency range {self.min_hz!r}..{self.max_hz!r} Hz must be finite, positive and ordered"
            )
        if self.steps_hz and (
            list(self.steps_hz) != sorted(set(self.steps_hz))
            or self.steps_hz[0] != self.min_hz
            or self.steps_hz[-1] != self.max_hz
        ):
            raise PolicyError(f"CPU frequency steps {self.steps_hz} must ascend from min_hz to max_hz")

    @property
    def continuous(self) -> bool:
        return not self.steps_hz

    def snap_up(self, freq_hz: float) -> float:
        """The lowest runnable frequency >= ``freq_hz`` (at least ``min_hz``); above ``max_hz`` is an error."""
        if not math.isfinite(freq_hz):
            raise PolicyError(f"CPU frequency {freq_hz!r} Hz must be finite")
        if freq_hz > self.max_hz * (1 + _REL_TOL):
            raise PolicyError(
                f"CPU frequency {freq_hz / 1e6:.1f} MHz exceeds this CPU's maximum {self.max_hz / 1e6:.1f} MHz; "
                "lengthen the deadline or reduce the work"
            )
        if freq_hz <= self.min_hz:
            return self.min_hz
        if self.continuous:
            return min(freq_hz, self.max_hz)
        return next(f for f in self.steps_hz if f >= freq_hz * (1 - _REL_TOL))


class CpuFreqControl(Protocol):
    """What the policy needs from a CPU: its table, its current frequency, and a way to set it."""

    def table(self) -> FrequencyTable: ...

    def current_frequency_hz(self) -> float: ...

    def set_frequency_hz(self, freq_hz: float) -> float:
        """Run at (the next step up from) ``freq_hz``; return the frequency actually set."""
        ...


class SimulatedCpuFreq:
    """In simulation the frequency is a number the compute-time model reads (testbed/learning/cost.py)."""

    def __init__(self, table: FrequencyTable, freq_hz: float | None = None) -> None:
        self._table = table
        self._freq_hz = table.max_hz if freq_hz is None else table.snap_up(freq_hz)

    def table(self) -> FrequencyTable:
        return self._table

    def current_frequency_hz(self) -> float:
        return self._freq_hz

    def set_frequency_hz(self, freq_hz: float) -> float:
        self._freq_hz = self._table.snap_up(freq_hz)
        return self._freq_hz


class SysfsCpuFreq:
    """Linux cpufreq through sysfs; ``root`` is ``/sys/devices/system/cpu`` on a board, a fake tree in tests.

    All CPUs that have a ``cpufreq`` directory are set together (a Pi's cores share one clock).
    """

    def __init__(self, root: Path = SYSFS_CPU_ROOT) -> None:
        self._root = Path(root)
        cpus = sorted(self._root.glob("cpu[0-9]*/cpufreq"), key=lambda p: int(p.parent.name[3:]))
        if not cpus:
            raise PolicyError(
                f"no cpufreq directories under {self._root} (expected cpuN/cpufreq/); this kernel or container "
                "has no CPU frequency scaling: enable a cpufreq driver (or simulate the board)"
            )
        self._dirs = cpus

    def _read(self, name: str, cpu_dir: Path | None = None) -> str:
        path = (cpu_dir or self._dirs[0]) / name
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise PolicyError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def _read_khz(self, name: str, cpu_dir: Path | None = None) -> float:
        text = self._read(name, cpu_dir)
        try:
            value = float(text) * _KHZ
        except ValueError:
            raise PolicyError(f"{(cpu_dir or self._dirs[0]) / name} holds {text!r}, expected a kHz integer") from None
        if not (math.isfinite(value) and value > 0):
            raise PolicyError(f"{(cpu_dir or self._dirs[0]) / name} holds {text!r}, expected a positive kHz value")
        return value

    def governor(self) -> str:
        return self._read("scaling_governor")

    def table(self) -> FrequencyTable:
        if (self._dirs[0] / "scaling_available_frequencies").exists():
            text = self._read("scaling_available_frequencies")
            try:
                steps = sorted({float(tok) * _KHZ for tok in text.split()})
            except ValueError:
                raise PolicyError(f"scaling_available_frequencies holds {text!r}, expected kHz integers") from None
            if not steps or steps[0] <= 0:
                raise PolicyError(f"scaling_available_frequencies holds {text!r}, expected positive kHz values")
            return FrequencyTable(steps[0], steps[-1], tuple(steps))
        return FrequencyTable(self._read_khz("cpuinfo_min_freq"), self._read_khz("cpuinfo_max_freq"))

    def current_frequency_hz(self) -> float:
        return self._read_khz("scaling_cur_freq")

    def set_frequency_hz(self, freq_hz: float) -> float:
        """Write the snapped frequency to ``scaling_setspeed`` (userspace governor) or ``scaling_max_freq``
        on every CPU and read it back; refuse with PolicyError if the kernel did not take it."""
        target_hz = self.table().snap_up(freq_hz)
        target_khz = round(target_hz / _KHZ)
        name = "scaling_setspeed" if self.governor() == "userspace" else "scaling_max_freq"
        for cpu_dir in self._dirs:
            path = cpu_dir / name
            try:
                path.write_text(f"{target_khz}\n")
            except PermissionError as exc:
                raise PolicyError(
                    f"no permission to write {path}: run the UE agent as root or grant write access to the "
                    "cpufreq files (e.g. a udev rule); the CPU frequency was NOT changed"
                ) from exc
            except OSError as exc:
                raise PolicyError(f"the kernel refused {target_khz} kHz in {path}: {exc.strerror or exc}") from exc
            got_khz = self._read_khz(name, cpu_dir) / _KHZ
            if round(got_khz) != target_khz:
                raise PolicyError(f"{path} reads {got_khz:.0f} kHz after writing {target_khz} kHz")
        return target_khz * _KHZ
