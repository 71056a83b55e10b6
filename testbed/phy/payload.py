"""The data body: payload bytes <-> constellation symbols on the data subcarriers (and back, softly).

Transmit chain (IEEE 802.11-2020 17.3.5, minus the SERVICE field: the scrambler seed comes from the header):
payload + CRC-32 (little-endian) -> bits, LSB first -> scramble -> [coded MCS: append 6 zero tail bits and
zero pad to whole OFDM symbols of N_DBPS, K=7 encode, puncture, interleave per symbol] / [uncoded: zero pad to
whole symbols of N_CBPS] -> Gray map. Receive chain: max-log LLRs weighted per symbol by 1/noise variance
(|H|^2/N0 after equalization), written straight to their mother-code positions (rxkernel.py) -> soft
Viterbi -> descramble -> CRC-32 check.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from testbed.phy.convcode import conv_encode, depuncture, viterbi_decode
from testbed.phy.crc import bits_to_bytes, bytes_to_bits, crc32
from testbed.phy.interleaver import interleave
from testbed.phy.layout import CRC_BYTES, payload_num_symbols
from testbed.phy.mcs import Mcs, get_mcs
from testbed.phy.modulation import map_bits
from testbed.phy.numerology import PhyConfig
from testbed.phy.rxkernel import demap_into
from testbed.phy.scrambler import scramble

_IN_PLACE = np.empty(0, np.intp)  # demap_into order: LLRs stay in air order


@lru_cache(maxsize=256)  # (MCS, length) pairs repeat; bounded so odd sizes cannot grow it
def tx_order(mcs_name: str, num_data: int, n_sym: int) -> np.ndarray:
    """(n_sym * N_CBPS,) intp: which mother-code bit goes on air at each position (puncture, then interleave).

    Built once per frame size from the public puncturing and interleaving stages, so sending is one gather
    ``mother[order]`` and receiving one scatter ``llrs_mother[order] = llrs``.
    """
    mcs = get_mcs(mcs_name)
    n_cbps = mcs.coded_bits_per_ofdm_symbol(num_data)
    n_mother = 2 * n_sym * mcs.data_bits_per_ofdm_symbol(num_data)
    kept = np.flatnonzero(depuncture(np.ones(n_sym * n_cbps, np.float32), mcs.code_rate, n_mother))
    order = interleave(kept.astype(np.float32), n_cbps, mcs.bits_per_symbol).astype(np.intp)  # exact below 2**24
    order.flags.writeable = False
    return order


@lru_cache(maxsize=1024)
def body_size(cfg: PhyConfig, mcs_name: str, length: int) -> tuple[int, int]:
    """(OFDM symbols, info bits per symbol N_DBPS (N_CBPS if uncoded)) of a body carrying ``length`` bytes.

    Cached: the layout arithmetic uses Fractions, which cost more than a short frame's DSP.
    """
    mcs = get_mcs(mcs_name)
    per_symbol = mcs.data_bits_per_ofdm_symbol(cfg.num_data) if mcs.coded else mcs.bits_per_symbol * cfg.num_data
    return payload_num_symbols(cfg, length, mcs), per_symbol


class PayloadCodec:
    """Bit-level transmit and receive chain of the data body for one numerology."""

    def __init__(self, cfg: PhyConfig) -> None:
        self.cfg = cfg

    def encode(self, payload: bytes, mcs: Mcs, seed: int) -> np.ndarray:
        """(n_sym, n_data) complex64 unit-energy symbols carrying ``payload`` (n_sym from layout)."""
        fcs = crc32(payload).to_bytes(CRC_BYTES, "little")
        return self.remodulate(scramble(bytes_to_bits(bytes(payload) + fcs), seed), mcs, len(payload))

    def remodulate(self, info: np.ndarray, mcs: Mcs, length: int) -> np.ndarray:
        """(n_sym, n_data) complex64 symbols of a body whose scrambled info bits are ``info``.

        info : (8 * (length + CRC_BYTES),) uint8, payload + CRC bits after scrambling (what :meth:`decode_bits`
            returns), so the receiver can rebuild what a decoded frame put on air.
        """
        n_sym, per_symbol = body_size(self.cfg, mcs.name, length)
        bits = np.zeros(n_sym * per_symbol, np.uint8)  # info (+ tail) + pad
        bits[: info.size] = info
        coded = conv_encode(bits)[tx_order(mcs.name, self.cfg.num_data, n_sym)] if mcs.coded else bits
        return map_bits(coded, mcs.bits_per_symbol).reshape(n_sym, self.cfg.num_data)

    def decode_bits(self, symbols: np.ndarray, noise_var: np.ndarray, mcs: Mcs, length: int) -> np.ndarray:
        """(8 * (length + CRC_BYTES),) uint8 scrambled info bits decoded from the body (no CRC check yet).

        symbols : (n_sym * n_data,) complex64 equalized body symbols, row by row.
        noise_var : (n_sym * n_data,) or (n_data,) float32 noise variance of each symbol (the second form:
            per subcarrier, the same in every row).
        """
        n_info = 8 * (length + CRC_BYTES)
        n_sym, per_symbol = body_size(self.cfg, mcs.name, length)
        if mcs.coded:
            mother = np.zeros(2 * n_sym * per_symbol, np.float32)  # punctured positions stay 0 (erasures)
            demap_into(symbols, noise_var, mcs.bits_per_symbol, tx_order(mcs.name, self.cfg.num_data, n_sym), mother)
            return viterbi_decode(mother, n_info)
        llrs = np.empty(symbols.size * mcs.bits_per_symbol, np.float32)
        demap_into(symbols, noise_var, mcs.bits_per_symbol, _IN_PLACE, llrs)
        return (llrs[:n_info] < 0).astype(np.uint8)

    def check(self, info: np.ndarray, seed: int, length: int) -> bytes | None:
        """Descramble :meth:`decode_bits` output; the payload of ``length`` bytes, or None when its CRC-32 fails."""
        data = bits_to_bytes(scramble(info, seed))
        payload, fcs = data[:length], data[length:]
        return payload if crc32(payload) == int.from_bytes(fcs, "little") else None

    def decode(self, symbols: np.ndarray, noise_var: np.ndarray, mcs: Mcs, seed: int, length: int) -> bytes | None:
        """Payload of ``length`` bytes, or None when its CRC-32 fails (:meth:`decode_bits` then :meth:`check`)."""
        return self.check(self.decode_bits(symbols, noise_var, mcs, length), seed, length)
