"""Additive white Gaussian noise at a given SNR per occupied subcarrier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testbed.channel.base import as_iq, require_finite


@dataclass(frozen=True)
class Awgn:
    """Complex white Gaussian noise.

    snr_db : Es/N0 per occupied subcarrier (the definition of the reference table in ARCHITECTURE.md).
        An OFDM signal of total power ``signal_power`` spreads it over ``occupied_fraction`` of the band,
        so the time-domain noise variance is ``signal_power / (occupied_fraction * 10**(snr_db/10))``.
    rng : source of the noise.
    occupied_fraction : used subcarriers / FFT size (PhyConfig.occupied_fraction); 1.0 for a
        single-carrier or already time-domain SNR.
    signal_power : mean |x|^2 of the signal the SNR refers to (linear, 1.0 for the PHY's unit-power bursts).
    """

    snr_db: float
    rng: np.random.Generator
    occupied_fraction: float = 1.0
    signal_power: float = 1.0

    def __post_init__(self) -> None:
        require_finite("Awgn snr_db", self.snr_db, low=-100.0, high=300.0)
        require_finite("Awgn occupied_fraction", self.occupied_fraction, low=1e-6, high=1.0)
        require_finite("Awgn signal_power", self.signal_power, low=0.0)

    @property
    def noise_variance(self) -> float:
        """E|n|^2 of the complex noise per sample (half in I, half in Q)."""
        return self.signal_power / (self.occupied_fraction * 10.0 ** (self.snr_db / 10.0))

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 with noise added."""
        x = as_iq(iq, "Awgn")
        noise = self.rng.standard_normal(2 * x.size, dtype=np.float32).view(np.complex64)
        noise *= np.float32(np.sqrt(self.noise_variance / 2.0))
        noise += x
        return noise
