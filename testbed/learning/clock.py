"""What the learning side needs to price a round before it runs: the airtime interface (``Airtime``;
learning never sees a radio) and the fixed costs (``ClockConfig``: control latency, the BS's compute, the
sizes of what goes on the wire). The policy plans with them; what a round really took is measured by the node
cores' transfers and jobs (testbed/experiment/network.py in virtual time, the daemons on the wall clock).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from testbed.errors import ConfigError


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
    """

    control_latency_s: float = 0.01
    bytes_per_param: int = 4
    bytes_per_label: int = 1
    bytes_per_pixel: int = 1
    bs_cpu_freq_hz: float = 3.0e9
    bs_cycles_per_sample: float = 4.0e5

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
