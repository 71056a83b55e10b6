"""Radio front-end impairments: oscillator phase noise, IQ imbalance, DC offset."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from testbed.channel.base import as_iq, require_finite


@dataclass(frozen=True)
class PhaseNoise:
    """Free-running oscillator phase noise as a Wiener process (random walk of the phase).

    A Lorentzian line of full 3 dB width ``linewidth_hz`` has phase increments N(0, 2 pi linewidth_hz / fs)
    per sample (Demir, Mehrotra, Roychowdhury, "Phase noise in oscillators: a unifying theory", IEEE TCAS-I
    47(5), 2000). The phase continues across calls.

    linewidth_hz : 3 dB linewidth of the oscillator (0 = no phase noise).
    sample_rate_hz : complex sample rate of the blocks.
    rng : source of the phase increments.
    """

    linewidth_hz: float
    sample_rate_hz: float
    rng: np.random.Generator
    _state: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_finite("PhaseNoise sample_rate_hz", self.sample_rate_hz, low=1.0)
        require_finite("PhaseNoise linewidth_hz", self.linewidth_hz, low=0.0, high=self.sample_rate_hz)
        object.__setattr__(self, "_state", {"phase_rad": 0.0})

    @property
    def increment_std_rad(self) -> float:
        """Standard deviation of the per-sample phase increment."""
        return math.sqrt(2.0 * math.pi * self.linewidth_hz / self.sample_rate_hz)

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 with the random phase applied."""
        x = as_iq(iq, "PhaseNoise")
        phase = self._state["phase_rad"] + np.cumsum(self.rng.standard_normal(x.size) * self.increment_std_rad)
        if phase.size:
            self._state["phase_rad"] = math.remainder(float(phase[-1]), 2.0 * math.pi)
        return x * np.exp(1j * phase).astype(np.complex64)


@dataclass(frozen=True)
class IqImbalance:
    """Receiver IQ imbalance: y = mu x + nu conj(x).

    The Q branch has gain 10**(amplitude_db/20) relative to I and is ``phase_deg`` away from quadrature,
    mu = (1 + g e^{-j phi}) / 2, nu = (1 - g e^{j phi}) / 2 (Tarighat, Bagheri, Sayed, "Compensation schemes
    and performance analysis of IQ imbalances in OFDM receivers", IEEE TSP 53(8), 2005, eq. 3).
    """

    amplitude_db: float
    phase_deg: float

    def __post_init__(self) -> None:
        require_finite("IqImbalance amplitude_db", self.amplitude_db, low=-20.0, high=20.0)
        require_finite("IqImbalance phase_deg", self.phase_deg, low=-45.0, high=45.0)

    @property
    def coefficients(self) -> tuple[complex, complex]:
        """(mu, nu): gain on the signal and on its mirror image."""
        g = 10.0 ** (self.amplitude_db / 20.0)
        phi = math.radians(self.phase_deg)
        return (1.0 + g * complex(math.cos(phi), -math.sin(phi))) / 2.0, (
            1.0 - g * complex(math.cos(phi), math.sin(phi))
        ) / 2.0

    @property
    def image_rejection_db(self) -> float:
        """10 log10(|mu|^2 / |nu|^2); infinite for a perfect receiver."""
        mu, nu = self.coefficients
        return math.inf if nu == 0 else 20.0 * math.log10(abs(mu) / abs(nu))

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 with the image added."""
        x = as_iq(iq, "IqImbalance")
        mu, nu = self.coefficients
        return (np.complex64(mu) * x + np.complex64(nu) * np.conj(x)).astype(np.complex64, copy=False)


@dataclass(frozen=True)
class DcOffset:
    """Constant complex offset (LO leakage, ADC bias); ``dc`` is in the units of the samples (linear)."""

    dc: complex

    def __post_init__(self) -> None:
        require_finite("DcOffset |dc|", abs(complex(self.dc)), high=1e6)

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 shifted by dc."""
        return as_iq(iq, "DcOffset") + np.complex64(self.dc)
