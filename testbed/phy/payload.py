"""The data body: payload bytes <-> constellation symbols on the data subcarriers (and back, softly).

Transmit chain (IEEE 802.11-2020 17.3.5, minus the SERVICE field: the scrambler seed comes from the header):
payload + CRC-32 (little-endian) -> bits, LSB first -> scramble -> [coded MCS: append 6 zero tail bits and
zero pad to whole OFDM symbols of N_DBPS, K=7 encode, puncture, interleave per symbol] / [uncoded: zero pad to
whole symbols of N_CBPS] -> Gray map. Receive chain: max-log LLRs weighted per symbol by 1/noise variance
(|H|^2/N0 after equalization) -> deinterleave -> depuncture -> soft Viterbi -> descramble -> CRC-32 check.
"""

from __future__ import annotations

import numpy as np

from testbed.phy.convcode import conv_encode, depuncture, puncture, viterbi_decode
from testbed.phy.crc import bits_to_bytes, bytes_to_bits, crc32
from testbed.phy.interleaver import deinterleave, interleave
from testbed.phy.layout import CRC_BYTES, payload_num_symbols
from testbed.phy.mcs import Mcs
from testbed.phy.modulation import demap_llr, map_bits
from testbed.phy.numerology import PhyConfig
from testbed.phy.scrambler import scramble


class PayloadCodec:
    """Bit-level transmit and receive chain of the data body for one numerology."""

    def __init__(self, cfg: PhyConfig) -> None:
        self.cfg = cfg

    def encode(self, payload: bytes, mcs: Mcs, seed: int) -> np.ndarray:
        """(n_sym, n_data) complex64 unit-energy symbols carrying ``payload`` (n_sym from layout)."""
        n_data = self.cfg.num_data
        fcs = crc32(payload).to_bytes(CRC_BYTES, "little")
        info = scramble(bytes_to_bits(bytes(payload) + fcs), seed)
        n_sym = payload_num_symbols(self.cfg, len(payload), mcs)
        n_cbps = mcs.coded_bits_per_ofdm_symbol(n_data)
        if mcs.coded:
            bits = np.zeros(n_sym * mcs.data_bits_per_ofdm_symbol(n_data), np.uint8)  # info, tail and pad
            bits[: info.size] = info
            coded = interleave(puncture(conv_encode(bits), mcs.code_rate), n_cbps, mcs.bits_per_symbol)
        else:
            coded = np.zeros(n_sym * n_cbps, np.uint8)
            coded[: info.size] = info
        return map_bits(coded, mcs.bits_per_symbol).reshape(n_sym, n_data)

    def decode(self, symbols: np.ndarray, noise_var: np.ndarray, mcs: Mcs, seed: int, length: int) -> bytes | None:
        """Payload of ``length`` bytes, or None when its CRC-32 fails.

        symbols : (n_sym * n_data,) complex64 equalized body symbols, row by row.
        noise_var : (n_sym * n_data,) float32 noise variance of each symbol.
        """
        n_info = 8 * (length + CRC_BYTES)
        llrs = demap_llr(symbols, noise_var, mcs.bits_per_symbol)
        if mcs.coded:
            n_data = self.cfg.num_data
            llrs = deinterleave(llrs, mcs.coded_bits_per_ofdm_symbol(n_data), mcs.bits_per_symbol)
            n_sym = symbols.size // n_data
            n_mother = 2 * n_sym * mcs.data_bits_per_ofdm_symbol(n_data)
            bits = viterbi_decode(depuncture(llrs, mcs.code_rate, n_mother), n_info)
        else:
            bits = (llrs[:n_info] < 0).astype(np.uint8)
        data = bits_to_bytes(scramble(bits, seed))
        payload, fcs = data[:length], data[length:]
        return payload if crc32(payload) == int.from_bytes(fcs, "little") else None
