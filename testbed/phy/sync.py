"""Burst detection, coarse and fine CFO, fine timing.

Detection (Schmidl & Cox, IEEE Trans. Commun. 45(12), 1997, eq. 5-8, with lag = one STF period): for every
candidate start n on a grid of one STF period, the normalized autocorrelation

    M(n) = |P(n)|^2 / max(Ra(n), Rb(n))^2,  P(n) = sum_k a_k conj(b_k),  a = r[n + k], b = r[n + k + lag]

over the whole STF (k < stf_len - lag); Ra, Rb are the energies of a and b (their max, not their product,
so a window whose energy sits in a few samples at a burst's end cannot look periodic). Cumulative sums of
per-period block sums make the cost O(n), one complex multiply per sample. Each window is made zero-mean
first (the STF has no DC), so a DC offset or LO leakage, periodic at every lag, does not look like a
preamble. On noise alone M is about Exp(mean 1/W), W = stf_len - lag = 152 terms at fft 64, so the
threshold 0.15 is crossed with probability about exp(-22.8) = 1e-10 per candidate; at 4 dB Es/N0 the STF
gives M about 0.45.

Coarse CFO: -angle(P) / (2 pi lag / fft) subcarrier spacings, unambiguous over +-fft / (2 lag) = +-4.
Fine timing: cross-correlation of the coarse-corrected signal with the LTF symbol (both LTF symbols,
non-coherently), then the earliest path within ``cp/2`` before the peak that reaches a quarter of the peak
power; the FFT window starts ``cp/4`` samples before it, inside the cyclic prefix, so a later-arriving
path or a sampling-clock drift of a few samples still sees no inter-symbol interference.
Fine CFO: angle of the lag-fft autocorrelation over every sample pair that repeats in the preamble (STF and
guard + LTF, about 180 pairs at fft 64); unambiguous over +-0.5 spacings, which the coarse estimate's error
(0.03 spacings rms at 0 dB) stays well inside. The pilots refine it further over the frame (tracking.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from testbed.phy.numerology import PhyConfig
from testbed.phy.preamble import preamble_for
from testbed.phy.tracking import phasor

DETECT_THRESHOLD = 0.15  # normalized metric M; see module docstring for false-alarm / detection figures
FIRST_PATH_FRACTION = 0.25  # LTF correlation power (of the peak) that counts as the first path
TONE_THRESHOLD = 0.9  # lag-1 normalized autocorrelation above which a detection is a sinusoid (is_tone)
RESYNC_BLOCKS = 256  # running window sums are recomputed from scratch this often (bounds rounding drift)


@dataclass(frozen=True)
class DetectionMetric:
    """Detection statistics on a grid of one STF period; entry j is the candidate burst start j * period.

    metric : (n_cand,) float32 normalized autocorrelation M in [0, 1].
    corr : (n_cand,) complex64 zero-mean autocorrelation P (its angle gives the coarse CFO).
    """

    metric: np.ndarray
    corr: np.ndarray


@dataclass(frozen=True)
class SyncResult:
    """Where a burst is and how far off frequency it is.

    window_start : sample index of the first LTF FFT window (first path minus the back-off).
    burst_start : estimated index of the burst's first sample (first path arrival of the STF).
    cfo : carrier frequency offset in subcarrier spacings (coarse + fine).
    dc : DC offset of the received samples (mean over the STF, which has no energy near 0 Hz).
    """

    window_start: int
    burst_start: int
    cfo: float
    dc: complex


class Synchronizer:
    """Detects STFs in a long buffer and refines each into a :class:`SyncResult`."""

    def __init__(self, cfg: PhyConfig, threshold: float = DETECT_THRESHOLD) -> None:
        self.cfg = cfg
        self.pre = preamble_for(cfg)
        self.threshold = threshold
        self.lag = self.pre.stf_period
        self.win_blocks = (self.pre.stf_len - self.lag) // self.lag  # blocks in one autocorrelation window
        self.backoff = cfg.cp_len // 4  # FFT window starts this many samples before the first path
        self.search = cfg.cp_len + 2 * self.lag  # fine-timing search half-width around the coarse estimate
        self._template = (self.pre.ltf_symbol / cfg.fft_size).astype(np.complex64)  # np.correlate conjugates it
        # Sample pairs (k, k + fft) that repeat in the preamble: inside the STF and inside guard + LTF,
        # each skipping cp/2 samples after a boundary where delayed paths of the previous part still arrive.
        skip, n_fft, stf = cfg.cp_len // 2, cfg.fft_size, self.pre.stf_len
        self._fine_pairs = np.concatenate(
            [np.arange(skip, stf - n_fft), np.arange(stf + skip, self.pre.ltf_offset + n_fft)]
        )
        self._fine_pairs_lagged = self._fine_pairs + n_fft

    def detection_metric(self, iq: np.ndarray) -> DetectionMetric:
        """M and P for every candidate start on the STF-period grid of ``iq`` ((n,) complex64)."""
        n_cand = len(iq) // self.lag - self.win_blocks - 1
        metric = np.zeros(max(n_cand, 0), np.float32)
        corr = np.zeros(max(n_cand, 0), np.complex64)
        if n_cand > 0:
            _detection_kernel(iq, self.lag, self.win_blocks, metric, corr)
        return DetectionMetric(metric, corr)

    def is_tone(self, iq: np.ndarray, start: int) -> bool:
        """True when the STF-long window at ``start`` is one sinusoid (CW interference, a spur), not an STF.

        A sinusoid is periodic at every lag, so it passes the detector; the STF's lag-1 autocorrelation is
        zero on a flat channel (its tones at +-8, +-16, +-24 cancel) and reaches 0.5 only if a channel leaves
        two tones alone, while a sinusoid gives 1. Rejecting these early keeps a CW-jammed buffer fast.
        """
        seg = iq[start : start + self.pre.stf_len]
        seg = seg - seg.mean()
        a, b = seg[:-1], seg[1:]
        ea, eb = float(np.vdot(a, a).real), float(np.vdot(b, b).real)
        return abs(np.vdot(a, b)) ** 2 > TONE_THRESHOLD * max(ea * eb, np.finfo(np.float64).tiny)

    def coarse_cfo(self, corr: complex) -> float:
        """CFO in subcarrier spacings from the STF autocorrelation P at lag one period."""
        return float(-np.angle(corr) * self.cfg.fft_size / (2 * np.pi * self.lag))

    def refine(self, iq: np.ndarray, coarse_start: int, coarse_cfo: float) -> SyncResult | None:
        """Fine timing and CFO from the LTF near ``coarse_start``; None if the LTF runs past the buffer."""
        n_fft = self.cfg.fft_size
        expected = coarse_start + self.pre.ltf_offset
        lo = max(expected - self.search, 0)
        hi = expected + self.search + 2 * n_fft
        if hi > len(iq):
            return None
        # DC offset (LO leakage): the STF has no energy near 0 Hz even after a CFO of a few spacings
        margin = self.cfg.cp_len // 2  # stays inside the STF despite the coarse timing error
        dc = complex(np.mean(iq[coarse_start + margin : coarse_start + self.pre.stf_len - margin]))
        seg = (iq[lo:hi] - dc) * phasor(-2 * np.pi * coarse_cfo / n_fft * np.arange(hi - lo))
        c = np.correlate(seg, self._template, "valid")  # (len - fft + 1,): sum_k seg[d + k] conj(template[k])
        power = np.abs(c[:-n_fft]) ** 2 + np.abs(c[n_fft:]) ** 2  # both LTF symbols, index = window start
        peak = int(np.argmax(power))
        early = max(peak - self.cfg.cp_len // 2, 0)
        first = early + int(np.argmax(power[early : peak + 1] >= FIRST_PATH_FRACTION * power[peak]))
        arrival = lo + first
        start = arrival - self.pre.ltf_offset
        if start < 0:
            return None
        pre = iq[start : start + len(self.pre.samples)] - dc
        # pairs n_fft apart: removing the coarse CFO from both turns each product by the same exp(-2j pi cfo),
        # so the sum is turned once instead of every sample
        lagged = np.vdot(pre[self._fine_pairs], pre[self._fine_pairs_lagged]) * np.exp(-2j * np.pi * coarse_cfo)
        fine = float(np.angle(lagged) / (2 * np.pi))
        return SyncResult(arrival - self.backoff, start, coarse_cfo + fine, dc)


@njit(cache=True)
def _block_sums(iq: np.ndarray, b: int, lag: int) -> tuple[complex, float, complex]:
    """Over block b (samples b*lag .. b*lag+lag-1): sum of samples, of |r|^2, and of r[k] conj(r[k + lag])."""
    s = 0j
    e = 0.0
    p = 0j
    for k in range(b * lag, (b + 1) * lag):
        x = iq[k]
        s += x
        e += x.real * x.real + x.imag * x.imag
        if k + lag < len(iq):
            p += x * np.conj(iq[k + lag])
    return s, e, p


@njit(cache=True)
def _detection_kernel(iq: np.ndarray, lag: int, w: int, metric: np.ndarray, corr: np.ndarray) -> None:
    """Fill metric[j], corr[j] (zero-mean M and P of the module docstring) for candidate starts j * lag.

    One pass over the samples: per-block sums enter a ring of the last w + 1 blocks, window sums run along
    (recomputed from the ring every RESYNC_BLOCKS candidates to bound rounding drift). Memory is O(w).
    """
    ring = w + 1  # blocks j .. j + w of candidate j
    total = np.zeros(ring, np.complex128)
    energy = np.zeros(ring, np.float64)
    prod = np.zeros(ring, np.complex128)
    for b in range(ring):
        total[b], energy[b], prod[b] = _block_sums(iq, b, lag)
    n_terms = w * lag
    p_sum = 0j
    sa = 0j
    ea = 0.0
    for j in range(len(metric)):
        if j > 0:  # slide the window of blocks j .. j + w - 1 on by one, then block j + w replaces j - 1
            slot, entering = (j - 1) % ring, (j + w - 1) % ring
            p_sum += prod[entering] - prod[slot]
            sa += total[entering] - total[slot]
            ea += energy[entering] - energy[slot]
            total[slot], energy[slot], prod[slot] = _block_sums(iq, j + w, lag)
        if j % RESYNC_BLOCKS == 0:
            p_sum = 0j
            sa = 0j
            ea = 0.0
            for b in range(j, j + w):
                p_sum += prod[b % ring]
                sa += total[b % ring]
                ea += energy[b % ring]
        last, first = (j + w) % ring, j % ring
        sb = sa - total[first] + total[last]
        eb = ea - energy[first] + energy[last]
        mean = (sb + total[first]) / (n_terms + lag)  # over the whole STF-long window
        m2 = n_terms * (mean.real * mean.real + mean.imag * mean.imag)
        pc = p_sum - np.conj(mean) * sa - mean * np.conj(sb) + m2
        ea0 = ea - 2.0 * (np.conj(mean) * sa).real + m2
        eb0 = eb - 2.0 * (np.conj(mean) * sb).real + m2
        denom = max(ea0, eb0) ** 2
        value = (pc.real * pc.real + pc.imag * pc.imag) / denom if denom > 1e-300 else 0.0
        metric[j] = min(value, 1.0)
        corr[j] = pc
