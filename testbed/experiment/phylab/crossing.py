"""Where a PER curve crosses 10%, and how sure we are: a logistic fit over paired frames, bootstrapped.

On Rayleigh block fading the PER curves are shallow (about 0.2 decades per dB near 10%), so 100 frames at a
point leave the crossing uncertain by +-0.3-0.5 dB, and the receiver's loss against the genie (the difference
of two crossings) twice that. Two things make the figure precise:

- Common random numbers: the receiver and the genie see the *same* channel realisation (taps, CFO) in frame
  i of a point (each frame's channel comes from its own generator seeded by (seed, SNR, i)), only the noise
  differs. Whether a faded frame fails depends mostly on its fade, so the two outcomes are strongly
  correlated and their difference is far more precise than either crossing.
- A local model: log-odds of frame error linear in SNR (logistic regression, maximum likelihood by Newton's
  method; D. R. Cox, "The regression analysis of binary sequences", JRSS B 20(2), 1958) over a few points
  around the crossing, instead of interpolating between the two points that straddle it.

The standard errors come from a paired bootstrap (B. Efron, "Bootstrap methods", Ann. Stat. 7(1), 1979):
frames are resampled within each point, a frame's receiver and genie outcomes together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 200  # standard errors of ~0.1 dB to about 10% of their value
NEWTON_STEPS = 30
MAX_SLOPE_PER_DB = 50.0  # a fitted log-odds slope steeper than this is a step: no finite crossing


@dataclass
class PairedPoint:
    """Frame outcomes of the receiver and the genie at one SNR, frame i over the same channel draw.

    snr_db : Es/N0 per data subcarrier.
    receiver_failed, genie_failed : (n,) bool, True where frame i was not delivered.
    """

    snr_db: float
    receiver_failed: np.ndarray
    genie_failed: np.ndarray

    def as_dict(self) -> dict:
        n = self.receiver_failed.size
        return {
            "snr_db": self.snr_db,
            "frames": n,
            "receiver_per": float(self.receiver_failed.mean()) if n else math.nan,
            "genie_per": float(self.genie_failed.mean()) if n else math.nan,
        }


def logistic_fit(snr_db: np.ndarray, errors: np.ndarray, frames: np.ndarray) -> tuple[float, float] | None:
    """(a, b) of log-odds(PER) = a + b * snr_db by maximum likelihood; None when the data cannot fix them.

    snr_db, errors, frames : (m,) per point (float dB, int failed frames, int frames). Needs at least two
    distinct SNRs and both failures and successes overall.
    """
    snr_db = np.asarray(snr_db, np.float64)
    errors, frames = np.asarray(errors, np.float64), np.asarray(frames, np.float64)
    keep = frames > 0
    snr_db, errors, frames = snr_db[keep], errors[keep], frames[keep]
    if np.unique(snr_db).size < 2 or errors.sum() == 0 or errors.sum() == frames.sum():
        return None
    centre = float(np.average(snr_db, weights=frames))  # centred for conditioning
    x = snr_db - centre
    design = np.stack([np.ones_like(x), x], axis=1)  # (m, 2)
    beta = np.zeros(2)
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        weight = frames * p * (1.0 - p)
        hessian = design.T @ (design * weight[:, None])
        gradient = design.T @ (errors - frames * p)
        try:
            step = np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
        except np.linalg.LinAlgError:
            return None
        beta += step
        if not np.all(np.isfinite(beta)) or abs(beta[1]) > MAX_SLOPE_PER_DB:
            return None  # separable data (a clean step between two points): no finite slope
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(beta[0] - beta[1] * centre), float(beta[1])


def fitted_crossing(snr_db: np.ndarray, errors: np.ndarray, frames: np.ndarray, target: float) -> float | None:
    """SNR where the fitted PER equals ``target`` (arguments as in :func:`logistic_fit`); None if PER rises."""
    fit = logistic_fit(snr_db, errors, frames)
    if fit is None or fit[1] >= 0:
        return None
    a, b = fit
    return (math.log(target / (1.0 - target)) - a) / b


def paired_crossings(points: list[PairedPoint], target: float, rng: np.random.Generator) -> dict[str, float | None]:
    """Receiver and genie crossings of ``target`` PER, the receiver's loss, and their bootstrap standard errors.

    Returns {receiver_db, genie_db, loss_db, receiver_se_db, genie_se_db, loss_se_db}; a figure the data cannot
    give (no crossing in the fit) is None, and so is its standard error.
    """
    snr = np.array([p.snr_db for p in points])
    frames = np.array([p.receiver_failed.size for p in points])
    rx_err = np.array([p.receiver_failed.sum() for p in points])
    genie_err = np.array([p.genie_failed.sum() for p in points])
    receiver = fitted_crossing(snr, rx_err, frames, target)
    genie = fitted_crossing(snr, genie_err, frames, target)
    boot = np.full((BOOTSTRAP_RESAMPLES, 2), np.nan)
    for r in range(BOOTSTRAP_RESAMPLES):
        picks = [rng.integers(0, n, n) for n in frames]  # the same frames for both: pairs stay paired
        rx_b = np.array([p.receiver_failed[i].sum() for p, i in zip(points, picks, strict=True)])
        genie_b = np.array([p.genie_failed[i].sum() for p, i in zip(points, picks, strict=True)])
        boot[r] = [
            _or_nan(fitted_crossing(snr, rx_b, frames, target)),
            _or_nan(fitted_crossing(snr, genie_b, frames, target)),
        ]
    loss = None if receiver is None or genie is None else receiver - genie
    return {
        "receiver_db": receiver,
        "genie_db": genie,
        "loss_db": loss,
        "receiver_se_db": _spread(boot[:, 0]) if receiver is not None else None,
        "genie_se_db": _spread(boot[:, 1]) if genie is not None else None,
        "loss_se_db": _spread(boot[:, 0] - boot[:, 1]) if loss is not None else None,
    }


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _spread(values: np.ndarray) -> float | None:
    """Robust standard deviation (half the 16-84 % range) of the bootstrap values; None if too few are finite.

    A resample that happens to flatten the fitted slope throws its crossing far away; the standard deviation
    would follow it, the quantiles do not.
    """
    finite = values[np.isfinite(values)]
    if finite.size < BOOTSTRAP_RESAMPLES // 2:
        return None
    low, high = np.quantile(finite, [0.16, 0.84])
    return float(high - low) / 2
