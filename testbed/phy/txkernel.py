"""Fused transmit kernel: header and data body straight into the frequency grid of a burst, in one pass.

``Transmitter.data_burst`` would otherwise run a dozen small numpy stages per frame (CRC, unpack, scramble,
encode, puncture, interleave, map, header product, pilot table, gather), whose fixed cost is larger than the
DSP of a short frame. This module does the same arithmetic in one numba kernel; the stages in payload.py,
header.py and grid.py stay the reference it is tested against bit for bit (tests/phy/test_txkernel.py).

Bit layout, as in those stages:

- header: on-air bit r (r = 0 .. header_num_symbols*n_data-1, row-major over (symbol, data subcarrier)) is
  ``parity(masks[r] & word) ^ offset[r]`` with ``word = Header.packed()`` (``HeaderCodec.affine_masks``: CRC,
  K=7 encoding, padding and interleaving are affine over GF(2)); BPSK, bit 1 -> +1.
- body: bit i < 8*(len(payload)+4) is bit i%8 (LSB first) of byte i//8 of payload + CRC-32 (little-endian),
  XOR the scrambler period at i % 127; the rest (tail and pad) are 0. Coded MCS: the rate-1/2 mother code of
  those bits, then on-air position k carries mother bit ``order[k]`` (payload._tx_order: puncture, then
  interleave). Uncoded: the bits themselves. Each group of bits_per_symbol bits, first most significant,
  indexes ``constellation(bits_per_symbol)``.
- grid: row s of the (n_sym, fft) spectrum is OFDM symbol s counted from the first header symbol; data bins
  get the symbols in ascending subcarrier order, pilot bins ``pilot_table[s % 127]``, every other bin 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from testbed.phy.convcode import encode_into
from testbed.phy.crc import crc32
from testbed.phy.grid import POLARITY_PERIOD, grid_for
from testbed.phy.header import Header, HeaderCodec
from testbed.phy.layout import CRC_BYTES
from testbed.phy.mcs import Mcs
from testbed.phy.modulation import constellation
from testbed.phy.numerology import PhyConfig
from testbed.phy.payload import body_size, tx_order
from testbed.phy.scrambler import PERIOD, scrambler_period


@njit(cache=True)
def _parity(x: np.int64) -> np.int64:
    x ^= x >> 32
    x ^= x >> 16
    x ^= x >> 8
    x ^= x >> 4
    x ^= x >> 2
    x ^= x >> 1
    return x & 1


@njit(cache=True)
def _fill_header_and_pilots(word, masks, offset, bpsk, data_bins, pilot_bins, pilot_table, spectrum) -> None:
    spectrum[:] = 0
    for s in range(spectrum.shape[0]):
        row = pilot_table[s % POLARITY_PERIOD]
        for k in range(pilot_bins.size):
            spectrum[s, pilot_bins[k]] = row[k]
    n_data = data_bins.size
    for r in range(masks.size):
        bit = _parity(masks[r] & word) ^ offset[r]
        spectrum[r // n_data, data_bins[r % n_data]] = bpsk[bit]


@njit(cache=True)
def _scrambled_bits(data, period, n_bits):
    bits = np.zeros(n_bits, np.uint8)  # tail and pad stay 0
    phase = 0
    for j in range(data.size):
        byte = data[j]
        for b in range(8):
            bits[8 * j + b] = ((byte >> b) & 1) ^ period[phase]
            phase += 1
            if phase == PERIOD:
                phase = 0
    return bits


@njit(cache=True)
def _fill_body(data, period, n_bits, order, bits_per_symbol, points, data_bins, spectrum) -> None:
    bits = _scrambled_bits(data, period, n_bits)
    coded = order.size > 0
    if coded:
        on_air = np.empty(2 * n_bits, np.uint8)  # mother code; position k of the air reads on_air[order[k]]
        encode_into(bits, on_air)
    else:
        on_air = bits
    n_data = data_bins.size
    k = 0
    for s in range(spectrum.shape[0]):
        row = spectrum[s]
        for d in range(n_data):
            index = 0
            for _ in range(bits_per_symbol):
                index = (index << 1) | on_air[order[k] if coded else k]
                k += 1
            row[data_bins[d]] = points[index]


class FusedBurstEncoder:
    """Header + data body of one numerology into a burst's spectrum; tables built once per numerology."""

    def __init__(self, cfg: PhyConfig, header_codec: HeaderCodec) -> None:
        self.cfg = cfg
        grid = grid_for(cfg)
        self._masks, self._offset = header_codec.affine_masks()
        self.header_symbols = header_codec.num_symbols
        self._bins = grid.data_bins.astype(np.intp), grid.pilot_bins.astype(np.intp), grid.pilot_table
        self._no_order = np.empty(0, np.intp)

    def spectrum(self, header: Header, payload: bytes, mcs: Mcs) -> np.ndarray:
        """(header_num_symbols + n_body, fft) complex64 spectrum of the data burst (before the IFFT).

        payload : the frame's bytes; ``header`` must describe it (length, MCS; its seq gives the scrambler seed).
        """
        cfg = self.cfg
        n_body, per_symbol = body_size(cfg, mcs.name, len(payload))
        data_bins, pilot_bins, pilot_table = self._bins
        spectrum = np.empty((self.header_symbols + n_body, cfg.fft_size), np.complex64)
        _fill_header_and_pilots(
            header.packed(), self._masks, self._offset, constellation(1), data_bins, pilot_bins, pilot_table, spectrum
        )
        data = np.frombuffer(payload + crc32(payload).to_bytes(CRC_BYTES, "little"), np.uint8)
        order = tx_order(mcs.name, cfg.num_data, n_body) if mcs.coded else self._no_order
        points = constellation(mcs.bits_per_symbol)
        period = scrambler_period(header.scrambler_seed)
        _fill_body(
            data,
            period,
            n_body * per_symbol,
            order,
            mcs.bits_per_symbol,
            points,
            data_bins,
            spectrum[self.header_symbols :],
        )
        return spectrum
