"""A perfect-CSI, perfect-sync reference link for the PER sweeps (what an ideal receiver would achieve).

The coded chain is that of IEEE 802.11a 17.3.5 built from the PHY's own stages (K=7 code, puncturing,
interleaver, Gray mapping, max-log demapper, soft Viterbi), simulated per data subcarrier:
y = H x + n with H the channel's frequency response, equalized with the true H and demapped with the
true per-subcarrier noise variance. No preamble, no estimation, no CFO. On AWGN it reproduces the
reference table of ARCHITECTURE.md (tested); on the fading profile it separates what the channel costs
from what the real receiver loses.
"""

from __future__ import annotations

import numpy as np

from testbed.channel import Multipath
from testbed.experiment.phy_link import ChannelFactory, Reception
from testbed.phy import MCS_TABLE, PhyConfig
from testbed.phy.convcode import conv_encode, depuncture, puncture, viterbi_decode
from testbed.phy.interleaver import deinterleave, interleave
from testbed.phy.layout import CRC_BYTES, payload_num_symbols
from testbed.phy.modulation import demap_llr, map_bits


class GenieTrial:
    """One frame of ``payload_bytes`` at one MCS through the channel's true frequency response."""

    def __init__(self, cfg: PhyConfig, mcs: str, payload_bytes: int) -> None:
        self.cfg = cfg
        self.mcs = MCS_TABLE[mcs]
        self.n_info = 8 * (payload_bytes + CRC_BYTES)
        n_sym = payload_num_symbols(cfg, payload_bytes, self.mcs)
        self.n_bits = n_sym * self.mcs.data_bits_per_ofdm_symbol(cfg.num_data)  # info + tail + zero pad
        self.n_cbps = self.mcs.coded_bits_per_ofdm_symbol(cfg.num_data)
        self.data_bins = cfg.fft_bins(cfg.data_subcarriers)

    def response(self, channel: ChannelFactory, rng: np.random.Generator) -> np.ndarray:
        """(num_data,) complex frequency response on the data subcarriers of one fresh realisation."""
        h = np.ones(self.cfg.num_data, np.complex128)
        for model in channel(rng):
            if isinstance(model, Multipath):  # offsets and noise are the real receiver's business
                h = h * np.fft.fft(model.draw_taps(), n=self.cfg.fft_size)[self.data_bins]
        return h

    def __call__(self, snr_db: float, channel: ChannelFactory, rng: np.random.Generator) -> Reception:
        """Send one random frame at ``snr_db`` (Es/N0 per data subcarrier) with perfect CSI at the receiver."""
        bps = self.mcs.bits_per_symbol
        bits = np.zeros(self.n_bits, np.uint8)
        bits[: self.n_info] = rng.integers(0, 2, self.n_info, dtype=np.uint8)  # tail and pad stay zero
        coded = bits
        if self.mcs.coded:
            coded = puncture(conv_encode(bits), self.mcs.code_rate)
        tx = map_bits(interleave(coded, self.n_cbps, bps), bps).reshape(-1, self.cfg.num_data)  # (n_sym, n_data)
        h = self.response(channel, rng)
        n0 = 10.0 ** (-snr_db / 10.0)
        noise = (rng.standard_normal(tx.shape) + 1j * rng.standard_normal(tx.shape)) * np.sqrt(n0 / 2)
        z = ((tx * h + noise) / h).astype(np.complex64).ravel()
        noise_var = np.broadcast_to(n0 / np.abs(h) ** 2, tx.shape).ravel().astype(np.float32)
        llrs = deinterleave(demap_llr(z, noise_var, bps), self.n_cbps, bps)
        raw_errors = int(np.count_nonzero((llrs < 0) != coded.astype(bool)))
        if self.mcs.coded:
            decoded = viterbi_decode(depuncture(llrs, self.mcs.code_rate, 2 * self.n_bits), self.n_info)
        else:
            decoded = (llrs[: self.n_info] < 0).astype(np.uint8)
        ok = bool(np.array_equal(decoded, bits[: self.n_info]))
        return Reception(ok, True, raw_errors, coded.size, None, ())
