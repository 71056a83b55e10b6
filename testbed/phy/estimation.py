"""Channel estimation from known symbols: a fixed skeleton and small rival smoothers.

The receiver estimates twice: from the two LTF symbols (to decode the header), then from the LTF plus the
header symbols once the header CRC has passed (their content is then known: five training symbols instead
of two, which matters most on frequency-selective channels where the estimate cannot be smoothed much).

Skeleton (:class:`ChannelEstimator`): least-squares estimate per training symbol, average over the symbols,
noise variance from their spread, then ``smooth`` (the one step subclasses change). A smoother is a linear
map ``h = A h_ls`` once chosen, so it also reports its per-subcarrier noise gain ``diag(A A^H)``; the
estimate error variance ``gain * noise_var / n_ltf`` is added to the noise of every equalized symbol by the
receiver, so LLRs and the reported ``noise_var`` stay honest.

- ``"ls"``: no smoothing (gain 1).
- ``"dft"`` (default): the LS estimate is fitted with an impulse response on taps ``-cp/4 .. 2 cp - cp/4``
  around the FFT-window start (least squares over the used subcarriers, so
  the null DC and edge subcarriers need no IFFT trick: van de Beek et al., "On channel estimation in OFDM
  systems", VTC 1995), keeping only significant taps ("most significant taps", Minn & Bhargava, IEEE Trans.
  Broadcast. 46(4), 2000), chosen greedily (orthogonal matching pursuit): add the tap whose matched filter
  sees most of the residual, refit, stop when no tap's residual power exceeds ``tap_threshold`` times the
  noise level. Greedy, because one path leaks into every tap through the null subcarriers (sidelobes at
  -14 dB) and a one-shot threshold keeps all of them at high SNR; and the matched filter, not the tap-wise
  LS solution, decides because the full LS fit is ill-conditioned (middle taps carry ~100x the noise),
  while the projections used for the refit are not.
  A flat channel keeps one or two taps, so the estimate is nearly noiseless; a tap below the threshold
  costs less than its (small) power in bias.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from testbed.errors import PhyError
from testbed.phy.numerology import PhyConfig

NOISE_FLOOR = 1e-12  # smallest noise variance reported (a noiseless link must not divide by zero)
# keep taps whose matched-filter power exceeds 4 x its noise level (noise alone passes w.p. e^-4 = 2%):
# on Rayleigh multipath the dropped weak taps then cost less than the few false ones (measured: estimate
# error 0.13 vs 0.24 noise variances at 26 dB with 5 training symbols; 0.014 vs 0.004 on a flat channel)
TAP_THRESHOLD = 4.0


@dataclass(frozen=True)
class ChannelEstimate:
    """What the LTF tells about the channel.

    h : (n_used,) complex64 frequency response on cfg.used_subcarriers (received / transmitted value).
    noise_var : per-subcarrier noise variance at the FFT output (same scale as h; 1/snr on a unit channel).
    error_gain : (n_used,) float32 variance of the estimate error of h, in units of noise_var.
    noise_dof : complex degrees of freedom behind noise_var ((n_train - 1) * n_used).
    """

    h: np.ndarray
    noise_var: float
    error_gain: np.ndarray
    noise_dof: int  # complex degrees of freedom behind noise_var


class ChannelEstimator(ABC):
    """LS on each training symbol -> average -> noise from the spread across symbols -> ``smooth``."""

    def __init__(self, cfg: PhyConfig) -> None:
        self.cfg = cfg

    def estimate(self, y_train: np.ndarray, x_train: np.ndarray) -> ChannelEstimate:
        """Estimate from symbols whose content is known (the LTF, then also the CRC-checked header).

        y_train : (n_train, n_used) complex received subcarriers, phase-aligned to the first symbol.
        x_train : (n_train, n_used) or (n_used,) transmitted values, |x| = 1.
        """
        n_train = y_train.shape[0]
        if n_train < 2:
            raise PhyError(f"the noise estimate needs at least two training symbols, got {n_train}")
        h_ls = y_train * np.conj(x_train)  # (n_train, n_used); |x| = 1, so this is y / x
        mean = h_ls.sum(axis=0) / n_train
        # Unbiased sample variance across symbols, averaged over subcarriers (|x| = 1, so it is the noise).
        dof = (n_train - 1) * h_ls.shape[1]
        spread = (h_ls - mean).reshape(-1)
        noise_var = max(float(np.vdot(spread, spread).real) / dof, NOISE_FLOOR)
        h, gain = self.smooth(mean, noise_var / n_train)
        return ChannelEstimate(h.astype(np.complex64), noise_var, (gain / n_train).astype(np.float32), dof)

    def estimate_known(self, y: np.ndarray, x: np.ndarray, noise_var: float, noise_dof: int) -> ChannelEstimate:
        """Estimate from many known symbols of any amplitude: a decoded frame used as pilots.

        y : (n, n_used) received subcarriers, phase-aligned to the reference of the previous estimate.
        x : (n, n_used) what was sent (QAM: |x| varies, so each subcarrier combines ``sum y conj(x) / sum |x|^2``,
            the ML estimate, whose noise variance is noise_var / sum |x|^2).
        noise_var, noise_dof : the noise measured from the training (decisions may be wrong, so not from them).
        """
        energy = (x.real**2 + x.imag**2).sum(axis=0)  # (n_used,)
        energy = np.maximum(energy, NOISE_FLOOR)
        mean_energy = float(energy.mean())
        h, gain = self.smooth((y * np.conj(x)).sum(axis=0) / energy, noise_var / mean_energy)
        return ChannelEstimate(h.astype(np.complex64), noise_var, (gain / mean_energy).astype(np.float32), noise_dof)

    @abstractmethod
    def smooth(self, h_ls: np.ndarray, ls_noise_var: float) -> tuple[np.ndarray, np.ndarray]:
        """(n_used,) LS estimate with noise variance ``ls_noise_var`` -> (estimate, (n_used,) gain diag(A A^H))."""


class LsEstimator(ChannelEstimator):
    """Plain averaged least squares: no smoothing."""

    def smooth(self, h_ls: np.ndarray, ls_noise_var: float) -> tuple[np.ndarray, np.ndarray]:
        return h_ls, np.ones(h_ls.shape, np.float64)


class DftEstimator(ChannelEstimator):
    """Significant taps of a short impulse response (about two cyclic prefixes), fitted by least squares."""

    def __init__(self, cfg: PhyConfig, tap_threshold: float = TAP_THRESHOLD) -> None:
        super().__init__(cfg)
        margin = cfg.cp_len // 4  # the FFT window starts cp/4 before the first path (sync.py)
        # up to 2 cp: paths beyond the cyclic prefix are rare and weak, but an unmodelled tail biases the fit
        taps = np.arange(-margin, 2 * cfg.cp_len - margin)
        self._basis = np.exp(-2j * np.pi * np.outer(cfg.used_subcarriers, taps) / cfg.fft_size)  # (n_used, taps)
        self._matched = self._basis.conj().T / cfg.num_used  # (taps, n_used): tap detection statistic
        self.tap_threshold = tap_threshold

    def smooth(self, h_ls: np.ndarray, ls_noise_var: float) -> tuple[np.ndarray, np.ndarray]:
        h_ls = h_ls.astype(np.complex64)
        threshold = self.tap_threshold * ls_noise_var / self.cfg.num_used  # per-tap noise level is ls_noise_var/n_used
        keep = np.zeros(self._matched.shape[0], bool)
        residual = h_ls
        for kept in range(keep.size):  # greedy: strongest remaining tap of the residual, refit, repeat
            c = self._matched @ residual
            power = c.real**2 + c.imag**2
            power[keep] = 0.0
            tap = int(np.argmax(power))
            if kept and power[tap] <= threshold:
                break
            keep[tap] = True
            projection, gain = self._projection(keep.tobytes())
            fitted = projection @ h_ls
            residual = h_ls - fitted
        return fitted, gain

    @lru_cache(maxsize=1024)  # noqa: B019 - one estimator per modem; the few tap patterns of a link repeat
    def _projection(self, keep_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Orthogonal projection onto the kept taps' responses, (n_used, n_used) complex64, and its diagonal."""
        keep = np.frombuffer(keep_bytes, dtype=bool)
        q, _ = np.linalg.qr(self._basis[:, keep])  # (n_used, kept) orthonormal basis of the kept taps
        return (q @ q.conj().T).astype(np.complex64), np.sum(np.abs(q) ** 2, axis=1)


ESTIMATORS: dict[str, type[ChannelEstimator]] = {"ls": LsEstimator, "dft": DftEstimator}


def make_estimator(name: str, cfg: PhyConfig) -> ChannelEstimator:
    """The estimator registered under ``name`` for ``cfg``."""
    try:
        return ESTIMATORS[name](cfg)
    except KeyError:
        raise PhyError(f"unknown channel estimator {name!r}; choose one of {', '.join(ESTIMATORS)}") from None
