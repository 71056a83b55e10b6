"""Gray-mapped BPSK/QPSK/16QAM/64QAM exactly as IEEE 802.11-2020 17.3.5.8, with max-log soft demapping.

Every 802.11 mapping is separable: the first half of each symbol's bits picks the in-phase level, the second
half the quadrature level, each by a reflected-binary Gray code on a PAM axis (the encoding tables of
17.3.5.8), and the point is scaled by K_MOD to unit average energy. The demapper therefore
works per axis with closed-form piecewise-linear max-log LLRs (exact max-log, not the Tosato-Bisaglia
simplification), vectorized over symbols.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit

from testbed.errors import PhyError
from testbed.phy.crc import check_bits

# K_MOD normalisation, IEEE 802.11-2020 17.3.5.8 (the K_MOD table): unit average symbol energy.
K_MOD = {1: 1.0, 2: 1 / np.sqrt(2), 4: 1 / np.sqrt(10), 6: 1 / np.sqrt(42)}

# Noise variances below this (SNR above 120 dB) are raised to it so LLRs stay finite in float32.
MIN_NOISE_VAR = 1e-12

# PAM level of one axis indexed by that axis' bits read as a binary number, first bit most significant
# (IEEE 802.11-2020 17.3.5.8, the BPSK, QPSK, 16QAM and 64QAM encoding tables after the K_MOD table:
# 1 bit: 0 -> -1, 1 -> +1; 2 bits: 00 -3, 01 -1, 11 +1, 10 +3;
# 3 bits: 000 -7, 001 -5, 011 -3, 010 -1, 110 +1, 111 +3, 101 +5, 100 +7).
_AXIS_LEVELS = {
    1: np.array([-1, 1]),
    2: np.array([-3, -1, 3, 1]),
    3: np.array([-7, -5, -1, -3, 7, 5, 1, 3]),
}


def _check_order(bits_per_symbol: int) -> None:
    if bits_per_symbol not in K_MOD:
        raise PhyError(f"bits_per_symbol must be 1 (BPSK), 2 (QPSK), 4 (16QAM) or 6 (64QAM), got {bits_per_symbol!r}")


def _check_symbols(symbols: np.ndarray) -> np.ndarray:
    if not isinstance(symbols, np.ndarray) or not np.issubdtype(symbols.dtype, np.complexfloating):
        kind = symbols.dtype if isinstance(symbols, np.ndarray) else type(symbols).__name__
        raise PhyError(f"symbols must be a complex64 numpy array, got {kind}")
    if symbols.ndim != 1:
        raise PhyError(f"symbols must be 1-D, got shape {symbols.shape}; flatten it first")
    symbols = symbols.astype(np.complex64, copy=False)
    if not np.isfinite(symbols).all():
        raise PhyError("symbols contain NaN/inf; check the equalizer (a zero channel estimate divides by zero)")
    return symbols


@cache
def _constellation(bits_per_symbol: int) -> np.ndarray:
    if bits_per_symbol == 1:
        points = _AXIS_LEVELS[1].astype(np.complex128)
    else:
        levels = _AXIS_LEVELS[bits_per_symbol // 2]
        points = (levels[:, None] + 1j * levels[None, :]).ravel()  # index = (I pattern << m) | Q pattern
    points = (points * K_MOD[bits_per_symbol]).astype(np.complex64)
    points.flags.writeable = False
    return points


@njit(cache=True)
def _map_kernel(bits: np.ndarray, bits_per_symbol: int, points: np.ndarray, out: np.ndarray) -> None:
    for i in range(out.size):  # one pass, no (n, k) temporaries: the transmitter maps every coded bit
        index = 0
        for j in range(i * bits_per_symbol, (i + 1) * bits_per_symbol):
            index = (index << 1) | bits[j]
        out[i] = points[index]


def constellation(bits_per_symbol: int) -> np.ndarray:
    """The ``(2**bits_per_symbol,) complex64`` points, unit average energy.

    Index ``i`` holds the point for the bit pattern b0 b1 ... read as a binary number with b0 (the first bit
    on air) most significant, so ``constellation(4)[0b0010]`` is the point for b0..b3 = 0, 0, 1, 0.
    """
    _check_order(bits_per_symbol)
    return _constellation(bits_per_symbol)


def map_bits(bits: np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """Map ``(n*bits_per_symbol,) uint8`` bits to ``(n,) complex64`` unit-energy symbols (802.11 Gray)."""
    _check_order(bits_per_symbol)
    check_bits(bits)
    if bits.size % bits_per_symbol:
        raise PhyError(
            f"map_bits needs a multiple of bits_per_symbol={bits_per_symbol} bits, got {bits.size}; pad the input"
        )
    out = np.empty(bits.size // bits_per_symbol, dtype=np.complex64)
    _map_kernel(np.ascontiguousarray(bits), bits_per_symbol, _constellation(bits_per_symbol), out)
    return out


def hard_decision(symbols: np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """Nearest constellation point of each ``(n,) complex64`` equalized symbol (for EVM); ``(n,) complex64``."""
    _check_order(bits_per_symbol)
    symbols = _check_symbols(symbols)
    k_mod = np.float32(K_MOD[bits_per_symbol])
    top = 2 ** max(bits_per_symbol // 2, 1) - 1  # outermost odd PAM level
    # the axis levels -top, -top+2, .., top rounded exactly as in constellation()
    levels = (np.arange(-top, top + 1, 2) * K_MOD[bits_per_symbol]).astype(np.float32)

    def nearest(axis: np.ndarray) -> np.ndarray:
        index = np.clip(np.floor(axis / (2 * k_mod) + np.float32(top + 1) / 2), 0, top)  # level number
        return levels[index.astype(np.intp)]

    if bits_per_symbol == 1:
        return nearest(symbols.real).astype(np.complex64)
    out = np.empty(symbols.shape, np.complex64)
    out.real = nearest(symbols.real)
    out.imag = nearest(symbols.imag)
    return out


def _axis_llrs(y: np.ndarray, m: int) -> list[np.ndarray]:
    """Max-log LLRs of the ``m`` bits on one PAM axis, in squared PAM-distance units (divide by noise later).

    ``y`` : (n,) float32 received level in PAM units (the 802.11 point divided by K_MOD). Each expression is
    ``min_{a: b=1} (y-a)^2 - min_{a: b=0} (y-a)^2`` for the Gray labels in ``_AXIS_LEVELS``, written out in
    closed form (the nearest level of each subset changes only at even integers).
    """
    if m == 1:  # b0: -1 / +1
        return [-4 * y]
    u = np.abs(y)
    if m == 2:  # 16QAM: b0 = sign, b1 = 1 on the inner levels +-1
        return [-4 * (2 * y - np.clip(y, -2, 2)), 4 * (u - 2)]
    # 64QAM: b0 = sign, b1 = 1 on +-1/+-3, b2 = 1 on +-3/+-5
    b0 = -4 * (4 * y - np.clip(y, -2, 2) - np.clip(y, -4, 4) - np.clip(y, -6, 6))
    b1 = 4 * (2 * u - np.clip(u, 2, 6) - 4)
    b2 = 4 * (np.abs(u - 4) - 2)
    return [b0, b1, b2]


def demap_llr(symbols: np.ndarray, noise_var: float | np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """Max-log LLRs (positive means 0) of equalized symbols ``y = x + e``, ``e`` complex Gaussian.

    symbols : (n,) complex64, equalized (unit-energy constellation scale).
    noise_var : float or (n,) float, variance of ``e`` per symbol (``N0 / |H_k|^2`` on subcarrier k), so
        symbols on faded subcarriers get proportionally smaller LLRs. Values below ``MIN_NOISE_VAR`` count as it.
    Returns (n * bits_per_symbol,) float32 in bit order b0 b1 ... of each symbol.
    """
    _check_order(bits_per_symbol)
    symbols = _check_symbols(symbols)
    nv = np.asarray(noise_var, dtype=np.float64)
    if nv.ndim > 1 or (nv.ndim == 1 and nv.shape != symbols.shape):
        raise PhyError(f"noise_var must be a scalar or shape {symbols.shape}, got shape {nv.shape}")
    if not (np.isfinite(nv).all() and (nv > 0).all()):
        raise PhyError("noise_var must be finite and > 0; floor the per-subcarrier noise estimate before demapping")
    k_mod = np.float32(K_MOD[bits_per_symbol])
    # squared PAM distance -> log-likelihood, per symbol
    scale = ((k_mod * k_mod) / np.maximum(nv, MIN_NOISE_VAR)).astype(np.float32)
    out = np.empty((symbols.size, bits_per_symbol), np.float32)  # (n, bits_per_symbol)
    m = max(bits_per_symbol // 2, 1)
    axes = [symbols.real] if bits_per_symbol == 1 else [symbols.real, symbols.imag]
    for a, axis in enumerate(axes):
        for j, llr in enumerate(_axis_llrs(axis / k_mod, m)):
            np.multiply(llr, scale, out=out[:, a * m + j])
    return out.reshape(-1)
