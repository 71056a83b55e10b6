"""The frame header: 64 bits, BPSK rate 1/2 with tail, protected by its own CRC-16.

Fields, in order on air, each least significant bit first (IEEE 802.11 bit order):

    | MCS index 4 | frame type 4 | length 16 | stream id 8 | sequence 16 | CRC-16 16 |

``length`` counts payload bytes for data frames and complex symbols for analog frames. The CRC-16
(crc.crc16) covers the 48 bits before it. The 64 bits plus 6 zero tail bits are convolutionally encoded at
rate 1/2, zero-padded to whole OFDM symbols, interleaved per symbol (n_bpsc = 1) and BPSK mapped. A header
whose CRC fails, or that names an unknown MCS or frame type, yields no frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from testbed.errors import PhyError
from testbed.phy.convcode import conv_encode, viterbi_decode
from testbed.phy.crc import crc16
from testbed.phy.interleaver import interleave
from testbed.phy.layout import HEADER_INFO_BITS, TAIL_BITS, header_num_symbols
from testbed.phy.mcs import MCS_BY_INDEX
from testbed.phy.modulation import map_bits
from testbed.phy.numerology import PhyConfig
from testbed.phy.rxkernel import demap_into

FRAME_TYPES = ("data", "analog")  # header code = position in this tuple
ANALOG_MCS_INDEX = 15  # MCS field of analog frames (no MCS_TABLE entry uses it)
_FIELDS = (("mcs_index", 4), ("frame_type", 4), ("length", 16), ("stream_id", 8), ("seq", 16))
CRC_BITS = 16
_WIDTHS = [width for _, width in _FIELDS]
_FIELD_BITS = sum(_WIDTHS)  # 48, the CRC-protected part
_STARTS = np.cumsum([0, *_WIDTHS[:-1]])  # first bit of each field
# bit i of the header is bit _SHIFTS[i] of its field (fields and CRC least significant bit first)
_SHIFTS = np.concatenate([np.arange(w) for w in [*_WIDTHS, CRC_BITS]]).astype(np.int64)


@dataclass(frozen=True)
class Header:
    """The decoded header fields (frame_type is the name: "data" or "analog")."""

    mcs_index: int
    frame_type: str
    length: int
    stream_id: int
    seq: int

    def __post_init__(self) -> None:
        if self.frame_type not in FRAME_TYPES:
            raise PhyError(f"frame_type must be one of {FRAME_TYPES}, got {self.frame_type!r}")
        for name, width in _FIELDS:
            value = getattr(self, name) if name != "frame_type" else 0
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 1 << width:
                raise PhyError(f"header field {name} must be an integer in 0..{(1 << width) - 1}, got {value!r}")

    @property
    def scrambler_seed(self) -> int:
        """Payload scrambler seed 1..127 derived from the sequence number (so no SERVICE field is needed)."""
        return self.seq % 127 + 1

    def field_bits(self) -> np.ndarray:
        """(48,) uint8: the fields, each least significant bit first (what the CRC-16 covers)."""
        values = [getattr(self, name) for name, _ in _FIELDS]
        values[1] = FRAME_TYPES.index(self.frame_type)
        return ((np.repeat(values, _WIDTHS) >> _SHIFTS[:_FIELD_BITS]) & 1).astype(np.uint8)

    def packed(self) -> int:
        """The 48 field bits as one integer whose bit i is header bit i (fields in order, each LSB first)."""
        word = 0
        for (name, _), start in zip(_FIELDS, _STARTS.tolist(), strict=True):
            value = FRAME_TYPES.index(self.frame_type) if name == "frame_type" else getattr(self, name)
            word |= value << start
        return word

    def to_bits(self) -> np.ndarray:
        """(64,) uint8: the fields then their CRC-16."""
        fields = self.field_bits()
        return np.concatenate([fields, _crc_bits(fields)])

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> Header | None:
        """Parse (64,) uint8 bits; None if the CRC fails or a field holds a value no sender uses."""
        if not np.array_equal(bits[_FIELD_BITS:HEADER_INFO_BITS], _crc_bits(bits[:_FIELD_BITS])):
            return None
        weighted = bits[:_FIELD_BITS].astype(np.int64) << _SHIFTS[:_FIELD_BITS]
        values = dict(zip((name for name, _ in _FIELDS), np.add.reduceat(weighted, _STARTS).tolist(), strict=True))
        if values["frame_type"] >= len(FRAME_TYPES):
            return None
        values["frame_type"] = FRAME_TYPES[values["frame_type"]]
        if values["frame_type"] == "data" and values["mcs_index"] not in MCS_BY_INDEX:
            return None
        return cls(**values)


def _crc_bits(fields: np.ndarray) -> np.ndarray:
    """(16,) uint8 CRC-16 bits of the (48,) field bits, least significant first."""
    matrix, offset = _crc_affine()
    return ((matrix @ fields.astype(np.float32) + offset).astype(np.uint8)) & 1


@cache
def _crc_affine() -> tuple[np.ndarray, np.ndarray]:
    """The CRC-16 of 48 bits is affine over GF(2): crc(x) = C x + c0 (mod 2); (C, c0) built from crc16 once.

    One small product instead of a 48-step shift-register loop per header (a noticeable share of a short
    frame's receive time).
    """

    def crc_bits(bits: np.ndarray) -> np.ndarray:
        return ((crc16(bits) >> _SHIFTS[_FIELD_BITS:]) & 1).astype(np.uint8)

    offset = crc_bits(np.zeros(_FIELD_BITS, np.uint8))
    columns = [crc_bits(unit) ^ offset for unit in np.eye(_FIELD_BITS, dtype=np.uint8)]
    return np.stack(columns, axis=1).astype(np.float32), offset.astype(np.float32)


class HeaderCodec:
    """Header bits <-> BPSK symbols on the data subcarriers of ``header_num_symbols`` OFDM symbols."""

    def __init__(self, cfg: PhyConfig) -> None:
        self.num_symbols = header_num_symbols(cfg)
        self.num_data = cfg.num_data
        self._coded_len = 2 * (HEADER_INFO_BITS + TAIL_BITS)
        self._padded_len = self.num_symbols * cfg.num_data
        # CRC, encoding, padding and interleaving are affine over GF(2) in the 48 field bits: on-air bits =
        # M x + v (mod 2), with column i of M the change header bit i alone makes; encode() takes one masked
        # parity per on-air bit instead of the shift registers.
        v = self._encode_bits(_crc_bits(np.zeros(_FIELD_BITS, np.uint8)), with_fields=np.zeros(_FIELD_BITS, np.uint8))
        units = np.eye(_FIELD_BITS, dtype=np.uint8)
        m = np.stack([self._encode_bits(_crc_bits(u), with_fields=u) ^ v for u in units], axis=1)
        # row r of M as a 48-bit mask: on-air bit r = parity(mask_r & packed fields) ^ v_r
        self._masks = (m.astype(np.int64) << np.arange(_FIELD_BITS, dtype=np.int64)).sum(axis=1), v
        # on-air bit p is coded bit _air_order[p] (interleave of the positions; exact in float32 below 2**24)
        positions = np.arange(self._padded_len, dtype=np.float32)
        self._air_order = interleave(positions, self.num_data, 1).astype(np.intp)

    def _encode_bits(self, crc: np.ndarray, with_fields: np.ndarray) -> np.ndarray:
        """48 field bits and their 16 CRC bits -> (padded_len,) interleaved coded bits (tail and pad zero)."""
        coded = np.zeros(self._padded_len, np.uint8)
        coded[: self._coded_len] = conv_encode(np.concatenate([with_fields, crc, np.zeros(TAIL_BITS, np.uint8)]))
        return interleave(coded, self.num_data, 1)

    def affine_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """The encoder as masks: on-air bit r = parity(masks[r] & header.packed()) ^ offset[r].

        Returns ((header_num_symbols * n_data,) int64 masks over the 48 field bits, same-shape uint8 offset),
        for kernels that encode a header themselves (txkernel.py).
        """
        masks, offset = self._masks
        return masks.copy(), offset.copy()

    def encode(self, header: Header) -> np.ndarray:
        """(header_num_symbols, n_data) complex64 BPSK symbols."""
        masks, offset = self._masks
        coded = (np.bitwise_count(masks & header.packed()).astype(np.uint8) & 1) ^ offset  # (padded_len,)
        return map_bits(coded, 1).reshape(self.num_symbols, self.num_data)

    def decode(self, symbols: np.ndarray, noise_var: np.ndarray) -> Header | None:
        """Equalized (header_num_symbols * n_data,) complex64 symbols and their noise variances -> Header or None.

        noise_var : (header_num_symbols * n_data,) per symbol, or (n_data,) per subcarrier (same every symbol).
        """
        coded = np.zeros(self._padded_len, np.float32)  # deinterleaved LLRs
        demap_into(symbols, noise_var, 1, self._air_order, coded)
        return Header.from_bits(viterbi_decode(coded[: self._coded_len], HEADER_INFO_BITS))
