"""Time and energy cost of one UE's work in a round: the model the virtual clock and the resource
allocator share, so what the allocator optimizes is exactly what the clock charges.

Compute follows the usual CMOS model for federated-learning devices (e.g. Yang et al., "Energy Efficient
Federated Learning Over Wireless Communication Networks", IEEE TWC 2021, eqs. 4-5):
time = cycles / f and energy = kappa * cycles * f^2, with cycles = cycles_per_sample * samples.
Radio energy is the power the radio draws while transmitting times its airtime. The draw is the RF output
power plus ``draw_offset_db`` (the PA's inefficiency and the radio's circuit power, a board's
``tx_draw_offset_db``); the engine's scenarios give the draw itself as ``tx_power_dbm`` (offset 0).
"""

from __future__ import annotations

import math

from testbed.errors import LearningError


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise LearningError(f"{name}={value!r} must be a finite positive number")


def compute_cycles(num_samples: int, cycles_per_sample: float) -> float:
    """CPU cycles to process ``num_samples`` training samples (forward + backward)."""
    if num_samples < 0:
        raise LearningError(f"num_samples={num_samples} must be >= 0")
    _check_positive(cycles_per_sample=cycles_per_sample)
    return num_samples * cycles_per_sample


def compute_time_s(num_samples: int, cycles_per_sample: float, cpu_freq_hz: float) -> float:
    """Seconds of computation at ``cpu_freq_hz``."""
    _check_positive(cpu_freq_hz=cpu_freq_hz)
    return compute_cycles(num_samples, cycles_per_sample) / cpu_freq_hz


def compute_energy_j(num_samples: int, cycles_per_sample: float, cpu_freq_hz: float, kappa: float) -> float:
    """Joules of computation: kappa [J/(cycle Hz^2)] * cycles * f^2."""
    _check_positive(cpu_freq_hz=cpu_freq_hz, kappa=kappa)
    return kappa * compute_cycles(num_samples, cycles_per_sample) * cpu_freq_hz**2


def dbm_to_w(power_dbm: float) -> float:
    """Convert dBm to watts."""
    return 10.0 ** ((power_dbm - 30.0) / 10.0)


def radio_energy_j(tx_power_dbm: float, airtime_s: float, draw_offset_db: float = 0.0) -> float:
    """Joules spent transmitting for ``airtime_s`` seconds at ``tx_power_dbm`` of RF output, the radio
    drawing ``draw_offset_db`` above that."""
    if not (math.isfinite(airtime_s) and airtime_s >= 0):
        raise LearningError(f"airtime_s={airtime_s!r} must be finite and >= 0")
    return dbm_to_w(tx_power_dbm + draw_offset_db) * airtime_s
