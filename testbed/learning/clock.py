"""The virtual clock and energy meter: what one round costs in seconds and joules.

A round ends when the slowest participant's contribution is in and the BS has used it:
  UE time   = download (until the model parts it needs have been broadcast) + compute + upload
  round     = max(max over distributed UEs, max over centralized UEs + BS compute) + control latency,
and with a deadline, contributions later than ``deadline_s`` are dropped and the round lasts the deadline.
Airtime comes from the caller (``Airtime``; learning never sees a radio): a download or upload lasts whole
cycles of the shared medium (one downlink slot, one uplink slot per UE), so rounds grow with the number of
UEs. Compute time and energy come from testbed/learning/cost.py; radio energy is TX power x the UE's own
bursts (``on_air_s``), not the time it waits for its slots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from testbed.errors import ConfigError
from testbed.learning.cost import compute_energy_j, compute_time_s, radio_energy_j


class TransferCost(Protocol):
    """One transfer on the shared medium: ``elapsed_s`` until it is complete (the sender waits for its slots),
    ``on_air_s`` the sender's own bursts (what its radio spends energy on)."""

    @property
    def elapsed_s(self) -> float: ...

    @property
    def on_air_s(self) -> float: ...


class Airtime(Protocol):
    """Seconds on the shared medium, including expected repairs, as the caller's PHY and link would spend them
    (testbed/link/airtime.py ``LinkAirtime``)."""

    def broadcast(
        self, payload_bytes: int, worst_snr_db: float, channels: Sequence[tuple[float, Sequence[float]]] = ()
    ) -> TransferCost:
        """Downlink broadcast of ``payload_bytes`` that a flat receiver at ``worst_snr_db`` and the
        frequency-selective receivers ``channels`` ((mean SNR dB, per-subcarrier gain) each) decode."""
        ...

    def upload(
        self, payload_bytes: int, snr_db: float, analog_symbols: int = 0, gain: Sequence[float] | None = None
    ) -> TransferCost:
        """Uplink of ``payload_bytes`` of digital payload from a UE at ``snr_db`` (over a channel of per-subcarrier
        ``gain``, None: flat) and ``analog_symbols`` complex analog symbols (not repaired: noise is part of the
        task)."""
        ...


@dataclass(frozen=True)
class ClockConfig:
    """Fixed costs of a round.

    control_latency_s : round start, assignment and acknowledgements over the control plane.
    bytes_per_param : width of a parameter in model broadcasts and uploaded updates (float32).
    bytes_per_label : class label sent with symbols or raw samples.
    bytes_per_pixel : raw image pixel (8-bit grey).
    bs_cpu_freq_hz, bs_cycles_per_sample : the BS host's training speed (full forward + backward).
    analog_bits_per_symbol : how an analog symbol counts in ``uplink_bits`` (one complex int16 I/Q pair).
    """

    control_latency_s: float = 0.01
    bytes_per_param: int = 4
    bytes_per_label: int = 1
    bytes_per_pixel: int = 1
    bs_cpu_freq_hz: float = 3.0e9
    bs_cycles_per_sample: float = 4.0e5
    analog_bits_per_symbol: int = 32

    def __post_init__(self) -> None:
        if not (math.isfinite(self.control_latency_s) and self.control_latency_s >= 0):
            raise ConfigError(f"clock control_latency_s={self.control_latency_s!r} must be finite and >= 0")
        for name in ("bs_cpu_freq_hz", "bs_cycles_per_sample"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"clock {name}={value!r} must be finite and > 0")

    def bs_compute_s(self, samples: float) -> float:
        """BS seconds for ``samples`` full-step-equivalent samples (fractions count part of a step)."""
        return samples * self.bs_cycles_per_sample / self.bs_cpu_freq_hz


@dataclass(frozen=True)
class UeCost:
    """One UE's share of a round."""

    download_s: float = 0.0
    compute_s: float = 0.0
    upload_s: float = 0.0
    energy_j: float = 0.0
    uplink_bits: float = 0.0
    on_air_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.download_s + self.compute_s + self.upload_s


def ue_cost(
    *,
    download_s: float,
    samples: int,
    cycles_per_sample: float,
    cpu_freq_hz: float,
    kappa: float,
    tx_power_dbm: float,
    upload: TransferCost,
    uplink_bits: float,
) -> UeCost:
    """Time and energy of a UE that processes ``samples`` at ``cycles_per_sample`` each, then uploads."""
    compute_s = compute_time_s(samples, cycles_per_sample, cpu_freq_hz)
    energy = compute_energy_j(samples, cycles_per_sample, cpu_freq_hz, kappa) + radio_energy_j(
        tx_power_dbm, upload.on_air_s
    )
    return UeCost(download_s, compute_s, upload.elapsed_s, energy, uplink_bits, upload.on_air_s)


def round_time_s(distributed: list[float], centralized: list[float], bs_compute_s: float, control_s: float) -> float:
    """Seconds of a round from the participants' finish times (see module docstring)."""
    d = max(distributed, default=0.0)
    c = max(centralized, default=0.0) + bs_compute_s if centralized or bs_compute_s > 0 else 0.0
    return max(d, c) + control_s
