"""Log-distance path loss anchored at the free-space loss of a reference distance."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from testbed.channel.base import as_iq, require, require_finite

SPEED_OF_LIGHT_M_S = 299_792_458.0  # exact, SI definition of the metre


def path_loss_db(
    distance_m: float | np.ndarray, frequency_hz: float, exponent: float = 2.0, reference_distance_m: float = 1.0
) -> float | np.ndarray:
    """Loss in dB: Friis free-space loss at ``reference_distance_m`` plus 10 n log10(d / d0).

    PL(d) = 20 log10(4 pi d0 f / c) + 10 n log10(d / d0) (T. S. Rappaport, Wireless Communications, 2nd ed.,
    eq. 4.5 and 4.68). ``exponent`` n is 2 in free space, about 3-4 indoors through walls.
    distance_m : scalar or array of distances in metres (> 0).
    """
    d = np.asarray(distance_m, dtype=np.float64)
    require(bool(np.all(np.isfinite(d)) and np.all(d > 0.0)), f"path_loss_db: distance_m={distance_m!r} must be > 0")
    require_finite("path_loss_db frequency_hz", frequency_hz, low=1.0)
    require_finite("path_loss_db exponent", exponent, low=0.0, high=10.0)
    require_finite("path_loss_db reference_distance_m", reference_distance_m, low=1e-6)
    fspl_d0_db = 20.0 * math.log10(4.0 * math.pi * reference_distance_m * frequency_hz / SPEED_OF_LIGHT_M_S)
    loss = fspl_d0_db + 10.0 * exponent * np.log10(d / reference_distance_m)
    return float(loss) if loss.ndim == 0 else loss


@dataclass(frozen=True)
class PathLoss:
    """Scale the amplitude by 10**(-path_loss_db / 20) for a link of ``distance_m`` at ``frequency_hz``."""

    distance_m: float
    frequency_hz: float
    exponent: float = 2.0
    reference_distance_m: float = 1.0

    def __post_init__(self) -> None:
        path_loss_db(self.distance_m, self.frequency_hz, self.exponent, self.reference_distance_m)  # validates

    @property
    def loss_db(self) -> float:
        """The path loss this model applies, in dB."""
        return float(path_loss_db(self.distance_m, self.frequency_hz, self.exponent, self.reference_distance_m))

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 -> (n,) complex64 attenuated."""
        return as_iq(iq, "PathLoss") * np.float32(10.0 ** (-self.loss_db / 20.0))
