"""Bit helpers and checksums: byte/bit conversion, input checks for bit and LLR arrays, CRC-32 and CRC-16.

Bits are ``(n,) uint8`` arrays of 0/1 and go on air least significant bit of each byte first (the IEEE
802.11 convention for the PSDU). LLRs are ``(n,) float32`` with ``log P(b=0|y) / P(b=1|y)``:
positive means 0. Every coding stage validates its input with :func:`check_bits` / :func:`check_llrs` so a
wrong dtype or a NaN fails here with a clear message instead of deep inside a numba kernel.
"""

from __future__ import annotations

import zlib

import numpy as np

from testbed.errors import PhyError

# CRC-16-CCITT as used by X.25/HDLC framing (ITU-T V.41): g(x) = x^16 + x^12 + x^5 + 1, register preset
# to all ones, no reflection, no final XOR ("CRC-16/CCITT-FALSE"; check value over b"123456789" is 0x29B1
# when the bytes are fed most significant bit first).
CRC16_POLY = 0x1021
CRC16_INIT = 0xFFFF


def check_bits(bits: np.ndarray, what: str = "bits") -> np.ndarray:
    """Return ``bits`` if it is a 1-D uint8 array of 0/1, else raise PhyError naming ``what``."""
    if not isinstance(bits, np.ndarray):
        raise PhyError(f"{what} must be a numpy array of dtype uint8 holding 0/1, got {type(bits).__name__}")
    if bits.dtype != np.uint8:
        raise PhyError(f"{what} must have dtype uint8 holding 0/1, got {bits.dtype}; convert with .astype(np.uint8)")
    if bits.ndim != 1:
        raise PhyError(f"{what} must be 1-D, got shape {bits.shape}; flatten it first")
    if bits.size and bits.max() > 1:
        raise PhyError(f"{what} must hold only 0 and 1, found value {int(bits.max())}; unpack bytes with bytes_to_bits")
    return bits


def check_llrs(llrs: np.ndarray, what: str = "llrs") -> np.ndarray:
    """Return ``llrs`` as a 1-D float32 array (float64 is converted), raising PhyError on NaN/inf or wrong type."""
    if not isinstance(llrs, np.ndarray) or not np.issubdtype(llrs.dtype, np.floating):
        kind = llrs.dtype if isinstance(llrs, np.ndarray) else type(llrs).__name__
        raise PhyError(f"{what} must be a float32 numpy array of log-likelihood ratios, got {kind}")
    if llrs.ndim != 1:
        raise PhyError(f"{what} must be 1-D, got shape {llrs.shape}; flatten it first")
    llrs = llrs.astype(np.float32, copy=False)
    if not np.isfinite(llrs).all():
        raise PhyError(
            f"{what} contain {int((~np.isfinite(llrs)).sum())} NaN/inf values; check the noise variance passed to "
            "the demapper (it must be finite and > 0)"
        )
    return llrs


def bytes_to_bits(data: bytes) -> np.ndarray:
    """Unpack ``data`` into ``(8*len(data),) uint8`` bits, least significant bit of each byte first."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PhyError(f"bytes_to_bits expects bytes, got {type(data).__name__}")
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Pack ``(8k,) uint8`` bits (least significant bit of each byte first) back into ``k`` bytes."""
    check_bits(bits)
    if bits.size % 8:
        raise PhyError(f"bits_to_bytes needs a multiple of 8 bits, got {bits.size}; slice off the padding first")
    return np.packbits(bits, bitorder="little").tobytes()


def crc32(data: bytes) -> int:
    """The standard CRC-32 (IEEE 802.3, zlib's) of ``data``: the frame check sequence of every payload."""
    return zlib.crc32(data) & 0xFFFFFFFF


def crc16(bits: np.ndarray) -> int:
    """CRC-16-CCITT (poly 0x1021, init 0xFFFF, no reflection, no final XOR) of ``bits`` in array order.

    Used on the short frame header (48 information bits), so a plain shift-register loop is fast enough.
    ``bits`` : (n,) uint8 of 0/1, any length (need not be whole bytes).
    """
    check_bits(bits)
    reg = CRC16_INIT
    for bit in bits.tolist():
        feedback = ((reg >> 15) & 1) ^ bit
        reg = (reg << 1) & 0xFFFF
        if feedback:
            reg ^= CRC16_POLY
    return reg
