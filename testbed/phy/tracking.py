"""Pilot tracking: common phase (residual CFO, phase noise) and timing drift (sampling-clock offset).

After the LTF channel estimate h, pilot k of symbol n is received as ``h_k p_nk exp(j(phi_n + 2 pi k d_n /
fft))`` plus noise, where ``phi_n`` is the common phase and ``d_n`` the timing drift in samples since the LTF
(a 40 ppm clock offset drifts ~2 samples over a 4000-byte frame, a phase slope of several radians at the
band edge). All symbols are handled at once, no per-symbol loop:

1. ``z = y_p conj(h_p p)`` (maximum-ratio weighted pilot phasors).
2. Drift: products of neighbouring pilots ``z_{k'} conj(z_k)`` rotate by ``2 pi (k'-k) d_n / fft``; summed over
   pilot pairs with the same spacing and over a centred window of ``2*drift_half_window+1`` symbols (the
   drift changes by ~0.003 samples per symbol), unwrapped along time, converted to samples.
3. Common phase: pilots de-rotated by the drift and summed; the mean rotation per symbol (residual CFO) is
   removed, a centred window averages the rest, and the rotation is put back. The window (1 to
   ``2*phase_half_window+1`` symbols) is chosen per frame: the per-symbol estimate noise (from the noise
   variance) against the phase noise's random walk (from the spread of symbol-to-symbol phase jumps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from testbed.phy.numerology import PhyConfig

PHASE_HALF_WINDOW = 6  # at most this many symbols each side are averaged for the common phase
DRIFT_HALF_WINDOW = 8  # symbols each side averaged for the timing drift
MAX_SCO_PPM = 100.0  # bound on the sampling-clock offset (two +-25 ppm Pluto crystals give at most 50)


@dataclass(frozen=True)
class PhaseTrack:
    """Per-symbol phase corrections found from the pilots.

    phase_rad : (n_sym,) common phase of each symbol.
    drift_samples : (n_sym,) timing drift of each symbol since the LTF, in samples.
    cfo_residual : CFO left after the preamble correction, in subcarrier spacings.
    phase_window : symbols averaged for each common-phase estimate.
    phase_error_var : variance (rad^2) of the common-phase estimate error.
    """

    phase_rad: np.ndarray
    drift_samples: np.ndarray
    cfo_residual: float
    phase_window: int
    phase_error_var: float

    def rotation(self, logical: np.ndarray, fft_size: int) -> np.ndarray:
        """(n_sym, k) complex64 factor the channel estimate of subcarriers ``logical`` picks up per symbol."""
        slope = (2 * np.pi / fft_size) * self.drift_samples.astype(np.float32)
        return phasor(self.phase_rad.astype(np.float32)[:, None] + np.outer(slope, logical.astype(np.float32)))


def phasor(angle_rad: np.ndarray) -> np.ndarray:
    """exp(j angle) as complex64, via float32 cos/sin (several times faster than numpy's complex exp)."""
    angle_rad = np.asarray(angle_rad, np.float32)
    out = np.empty(angle_rad.shape, np.complex64)
    np.cos(angle_rad, out=out.real)
    np.sin(angle_rad, out=out.imag)
    return out


def common_phase(y_pilots: np.ndarray, h_pilots: np.ndarray, reference: np.ndarray, noise_var: float) -> PhaseTrack:
    """One common phase for a few symbols (the header), no drift: all their pilots averaged together.

    After the preamble CFO correction (error < 1% of a spacing at 10 dB) three symbols rotate by < 0.1 rad,
    while a per-symbol estimate from four pilots at 2 dB would be off by ~0.3 rad rms.
    y_pilots : (n_sym, n_pil) received pilots; h_pilots : (n_pil,) channel; reference : (n_sym, n_pil) sent.
    """
    z = y_pilots * np.conj(h_pilots[None, :] * reference)
    n_sym = z.shape[0]
    error_var = noise_var / (2 * n_sym * max(float(np.sum(np.abs(h_pilots) ** 2)), np.finfo(np.float64).tiny))
    return PhaseTrack(np.full(n_sym, np.angle(z.sum())), np.zeros(n_sym), 0.0, n_sym, error_var)


def moving_sum(x: np.ndarray, half_window: int) -> np.ndarray:
    """Centred moving sum along axis 0 over ``2*half_window+1`` rows, truncated at the ends (same shape)."""
    n = x.shape[0]
    c = np.concatenate([np.zeros((1, *x.shape[1:]), np.complex128), np.cumsum(x, axis=0, dtype=np.complex128)])
    idx = np.arange(n)
    return c[np.minimum(idx + half_window + 1, n)] - c[np.maximum(idx - half_window, 0)]


class PilotTracker:
    """Estimates a :class:`PhaseTrack` from the pilots of all symbols of a frame."""

    def __init__(
        self, cfg: PhyConfig, phase_half_window: int = PHASE_HALF_WINDOW, drift_half_window: int = DRIFT_HALF_WINDOW
    ) -> None:
        self.cfg = cfg
        self.phase_half_window = phase_half_window
        self.drift_half_window = drift_half_window
        self.pilots = cfg.pilot_indices.astype(np.float64)
        spacing = np.diff(self.pilots)
        self._spacings = np.unique(spacing)
        self._pair_groups = [np.flatnonzero(spacing == s) for s in self._spacings]

    def track(self, y_pilots: np.ndarray, h_pilots: np.ndarray, reference: np.ndarray, noise_var: float) -> PhaseTrack:
        """y_pilots : (n_sym, n_pil) received pilots; h_pilots : (n_pil,) channel; reference : (n_sym, n_pil) sent.

        noise_var : per-subcarrier noise variance (sets how many symbols the common phase averages).
        """
        n_fft = self.cfg.fft_size
        z = y_pilots * np.conj(h_pilots[None, :] * reference)  # (n_sym, n_pil)
        pairs = z[:, 1:] * np.conj(z[:, :-1])  # (n_sym, n_pil - 1)
        drift = np.zeros(z.shape[0])
        weight = np.zeros(z.shape[0])
        for spacing, group in zip(self._spacings, self._pair_groups, strict=True):
            summed = moving_sum(pairs[:, group].sum(axis=1, keepdims=True), self.drift_half_window)[:, 0]
            w = np.abs(summed) * spacing
            drift += w * np.unwrap(np.angle(summed)) * n_fft / (2 * np.pi * spacing)
            weight += w
        drift /= np.maximum(weight, np.finfo(np.float64).tiny)
        # no crystal drifts faster than MAX_SCO_PPM: bounds the noise of short frames at low SNR
        elapsed = (np.arange(len(drift)) + 2) * self.cfg.symbol_len  # samples since the LTF, roughly
        drift = np.clip(drift, -MAX_SCO_PPM * 1e-6 * elapsed, MAX_SCO_PPM * 1e-6 * elapsed)
        common = np.sum(z * phasor(-2 * np.pi / n_fft * np.outer(drift, self.pilots)), axis=1)  # (n_sym,)
        step = float(np.angle(np.vdot(common[:-1], common[1:]))) if len(common) > 1 else 0.0
        ramp = step * np.arange(len(common))
        level = common * phasor(-ramp)  # residual CFO removed: what is left is noise and phase noise
        single_var = noise_var / (2 * max(float(np.sum(np.abs(h_pilots) ** 2)), np.finfo(np.float64).tiny))
        walk_var = 0.0
        if len(level) > 2:  # increments of a random walk (phase noise) add to those of the estimate noise
            jumps = np.angle(level[1:] * np.conj(level[:-1]))
            walk_var = max(float(np.sum(jumps**2)) / jumps.size - 2 * single_var, 0.0)
        half, error_var = self._phase_window(single_var, walk_var)
        phase = np.angle(moving_sum(level[:, None], half)[:, 0]) + ramp
        cfo_residual = step / (2 * np.pi * self.cfg.symbol_len / n_fft)
        return PhaseTrack(phase, drift, cfo_residual, 2 * half + 1, error_var)

    def _phase_window(self, single_var: float, walk_var: float) -> tuple[int, float]:
        """Half-width of the common-phase average minimising its error, and that error variance (rad^2).

        Averaging W = 2M+1 symbols divides the estimate noise by W but adds the phase noise's wander
        around the centre symbol: walk_var * M(M+1)(2M+1) / (3 W^2) for a random walk.
        """
        m = np.arange(self.phase_half_window + 1)
        w = 2 * m + 1
        error = single_var / w + walk_var * m * (m + 1) * w / (3 * w**2)
        best = int(np.argmin(error))
        return best, float(error[best])
