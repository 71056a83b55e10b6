"""The preamble: what a receiver needs to find a burst, correct its frequency and estimate the channel.

Sample budget (fixed by ``layout.preamble_num_samples``): ``10 * fft/4`` short-training samples, a
``2 * cp`` guard, two ``fft``-long long-training symbols (IEEE 802.11-2020 17.3.3 shape).

Content (our design, not 802.11's):

- Short training field (STF): energy only on subcarriers that are non-zero multiples of 8, so its period
  is ``fft/8`` samples (20 repetitions at fft=64). A lag of one period makes the autocorrelation CFO
  estimate unambiguous over +-4 subcarrier spacings, twice the +-2 that two Pluto crystals need (802.11's
  fft/4 period would give exactly +-2, no margin).
- Long training field (LTF): every used subcarrier carries a Zadoff-Chu value (constant amplitude, so the
  LS channel estimate has equal noise on every subcarrier; Chu, IEEE Trans. IT-18, 1972). The guard is the
  cyclic extension of the LTF symbol, so the timing may land anywhere in it.

Every part has unit average power per sample, like the data symbols.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import scipy.fft

from testbed.errors import PhyError
from testbed.phy.numerology import PhyConfig

STF_TONE_STEP = 8  # STF subcarriers are multiples of this, so its period is fft / STF_TONE_STEP samples
STF_LEN_QUARTERS = 10  # STF length in fft/4 units (layout.preamble_num_samples)


def zadoff_chu(length: int, root: int = 1) -> np.ndarray:
    """Zadoff-Chu sequence ``exp(-j*pi*root*n*(n + length%2)/length)``, ``(length,) complex128``, |x| = 1."""
    n = np.arange(length)
    return np.exp(-1j * np.pi * root * n * (n + length % 2) / length)


def ofdm_time(cfg: PhyConfig, logical: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One fft-long time-domain symbol with ``values`` on ``logical`` subcarriers, unit average power.

    logical : (k,) int logical subcarrier indices; values : (k,) complex, unit modulus.
    Returns (fft_size,) complex128.
    """
    spectrum = np.zeros(cfg.fft_size, np.complex128)
    spectrum[cfg.fft_bins(logical)] = values
    return scipy.fft.ifft(spectrum) * (cfg.fft_size / np.sqrt(len(logical)))


class Preamble:
    """STF and LTF of one numerology, computed once (use :func:`preamble_for`)."""

    def __init__(self, cfg: PhyConfig) -> None:
        used = cfg.used_subcarriers
        self.stf_subcarriers = used[used % STF_TONE_STEP == 0]
        if len(self.stf_subcarriers) < 2:
            raise PhyError(
                f"the short training field needs at least two used subcarriers at multiples of {STF_TONE_STEP}; "
                f"occupied_half_width={cfg.occupied_half_width} gives {len(self.stf_subcarriers)}. Widen the band."
            )
        self.stf_period = cfg.fft_size // STF_TONE_STEP  # samples; lag of the coarse CFO estimator
        self.stf_len = STF_LEN_QUARTERS * cfg.fft_size // 4
        self.guard_len = 2 * cfg.cp_len
        self.ltf_offset = self.stf_len + self.guard_len  # first LTF symbol body, from the burst start
        stf_symbol = ofdm_time(cfg, self.stf_subcarriers, zadoff_chu(len(self.stf_subcarriers)))
        stf = np.resize(stf_symbol[: self.stf_period], self.stf_len)  # periodic: repeat one period
        #: (n_used,) complex128 LTF values on cfg.used_subcarriers, |x| = 1
        self.ltf_values = zadoff_chu(cfg.num_used)
        #: (fft,) complex64 one LTF symbol, unit power: the fine-timing template
        self.ltf_symbol = ofdm_time(cfg, used, self.ltf_values).astype(np.complex64)
        ltf = np.concatenate([self.ltf_symbol[-self.guard_len :], self.ltf_symbol, self.ltf_symbol])
        #: (layout.preamble_num_samples,) complex64, unit average power
        self.samples = np.concatenate([stf, ltf]).astype(np.complex64)
        self.samples.flags.writeable = False


@cache
def preamble_for(cfg: PhyConfig) -> Preamble:
    """The preamble of ``cfg``, built once per numerology."""
    return Preamble(cfg)
