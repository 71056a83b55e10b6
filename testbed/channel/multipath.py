"""Tapped-delay-line multipath fading with an exponential power-delay profile.

The profile is the exponential-decay model used for IEEE 802.11 evaluations (N. Chayat / Medbo, doc.
IEEE 802.11-97/96, "Tentative criteria for comparison of modulation methods": P_k ~ exp(-k Ts / T_rms),
k = 0 .. 10 T_rms / Ts). Here the decay is solved so the *discrete, truncated* profile has exactly the
requested rms delay spread, and the powers sum to one (unit mean channel power).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from testbed.channel.base import as_iq, require, require_finite

TAPS_PER_RMS_DELAY = 10  # profile length 10 * T_rms (IEEE 802.11-97/96 exponential model)


def rms_delay_spread(power: np.ndarray) -> float:
    """RMS delay spread in samples of a power-delay profile ``power`` (num_taps,) linear, tap k at delay k."""
    p = np.asarray(power, dtype=np.float64)
    p = p / p.sum()
    k = np.arange(p.size)
    mean = float(np.dot(p, k))
    return math.sqrt(max(float(np.dot(p, k * k)) - mean * mean, 0.0))


def exponential_profile(rms_delay_spread_samples: float, num_taps: int) -> np.ndarray:
    """(num_taps,) float64 tap powers ~ r**k summing to 1 whose rms delay spread is the one requested."""
    tau = rms_delay_spread_samples
    if tau == 0.0 or num_taps == 1:
        require(tau == 0.0, f"Multipath: rms_delay_spread_samples={tau:g} needs more than one tap")
        return np.eye(1, num_taps).ravel()
    k = np.arange(num_taps)
    max_tau = rms_delay_spread(np.ones(num_taps))
    require(
        tau < max_tau,
        f"Multipath: rms_delay_spread_samples={tau:g} is not reachable with num_taps={num_taps} "
        f"(a flat profile gives {max_tau:.3g}); use more taps or leave num_taps=None",
    )
    # rms spread of r**k grows monotonically from 0 (r -> 0) to the flat value (r = 1); solve in log r.
    log_r = brentq(lambda lr: rms_delay_spread(np.exp(lr * k)) - tau, -50.0, 0.0, xtol=1e-12)
    p = np.exp(log_r * k)
    return p / p.sum()


@dataclass(frozen=True)
class Multipath:
    """Rayleigh or Rician fading tapped delay line, one tap per sample.

    rms_delay_spread_samples : rms delay spread of the mean power-delay profile, in samples (0 = flat fading).
    rng : source of the tap realisations.
    k_factor_db : Rician K of the first tap (line-of-sight power / scattered power) in dB; None = Rayleigh.
    num_taps : length of the delay line; None = 10 * rms delay spread + 1.
    block_fading : True draws a new realisation on every call (block fading); False keeps the one drawn at
        construction. Either way the convolution tail of one call is added to the start of the next, so a
        stream processed block by block equals one long block.
    """

    rms_delay_spread_samples: float
    rng: np.random.Generator
    k_factor_db: float | None = None
    num_taps: int | None = None
    block_fading: bool = True
    _power: np.ndarray = field(init=False, repr=False, compare=False)
    _state: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_finite("Multipath rms_delay_spread_samples", self.rms_delay_spread_samples, low=0.0, high=1e4)
        if self.k_factor_db is not None:
            require_finite("Multipath k_factor_db", self.k_factor_db, low=-100.0, high=100.0)
        n = self.num_taps
        if n is None:
            n = int(math.ceil(TAPS_PER_RMS_DELAY * self.rms_delay_spread_samples)) + 1
        require(
            isinstance(n, (int, np.integer)) and 1 <= n <= 100_000,
            f"Multipath: num_taps={n!r} must be an integer in 1..100000",
        )
        object.__setattr__(self, "_power", exponential_profile(float(self.rms_delay_spread_samples), int(n)))
        object.__setattr__(self, "_state", {"taps": self.draw_taps(), "tail": np.zeros(int(n) - 1, np.complex64)})

    @property
    def power_delay_profile(self) -> np.ndarray:
        """(num_taps,) float64 mean tap powers, summing to 1."""
        return self._power.copy()

    @property
    def taps(self) -> np.ndarray:
        """(num_taps,) complex64 impulse response used by the last call (or drawn at construction)."""
        return self._state["taps"].copy()

    def draw_taps(self) -> np.ndarray:
        """A fresh (num_taps,) complex64 realisation: CN(0, P_k) per tap, tap 0 Rician when K is given."""
        n = self._power.size
        scatter = (self.rng.standard_normal(n) + 1j * self.rng.standard_normal(n)) * np.sqrt(self._power / 2.0)
        if self.k_factor_db is not None:
            k = 10.0 ** (self.k_factor_db / 10.0)
            los = np.sqrt(self._power[0] * k / (k + 1.0)) * np.exp(1j * self.rng.uniform(0.0, 2.0 * np.pi))
            scatter[0] = los + scatter[0] / np.sqrt(k + 1.0)
        return scatter.astype(np.complex64)

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 convolved with the taps (plus the previous call's tail)."""
        x = as_iq(iq, "Multipath")
        if self.block_fading:
            self._state["taps"] = self.draw_taps()
        if x.size == 0:
            return x.copy()
        full = np.convolve(x, self._state["taps"])  # (n + num_taps - 1,)
        full[: self._state["tail"].size] += self._state["tail"]  # full is never shorter than the tail
        self._state["tail"] = full[x.size :].copy()
        return full[: x.size]
