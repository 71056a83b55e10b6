"""Fused receive kernels: FFT windows cut and CFO-corrected in one pass, and a soft demapper that writes
max-log LLRs straight to their mother-code positions.

Windows: ``out[w, k] = (iq[starts[w] + k] - dc) * ramp[k] * start_phase[w]`` (the receiver's per-sample CFO
ramp and each window's starting phase), instead of reshape, concatenate, subtract and two multiplies.

The receive chain of payload.py would otherwise demap with a dozen numpy temporaries per axis, then scatter
the LLRs through the puncture+interleave order (or deinterleave the header). This kernel does both in one
pass per symbol, with the closed-form per-axis LLRs of ``modulation._axis_llrs`` (the numpy
:func:`modulation.demap_llr` stays the reference it is tested against, tests/phy/test_rxkernel.py).

Layout: symbol i carries bits i*b .. i*b+b-1 (b = bits_per_symbol, first bit most significant, the in-phase
axis first); on-air bit k goes to ``out[order[k]]`` (``order`` from payload.tx_order, or an interleaver
permutation), or to ``out[k]`` when ``order`` is empty. ``noise_var[i % len(noise_var)]`` is symbol i's
noise variance, so a per-subcarrier vector serves a whole frame without broadcasting it out.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from testbed.errors import PhyError
from testbed.phy.modulation import K_MOD, MIN_NOISE_VAR

_F = np.float32


@njit(cache=True)
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@njit(cache=True)
def _axis(y, m, scale, out, k, order):
    """Write the m LLRs of PAM level y (in PAM units) times scale at air positions k.. (see modulation._axis_llrs)."""
    two, four, six = _F(2.0), _F(4.0), _F(6.0)
    if m == 1:
        llrs = (-four * y, _F(0.0), _F(0.0))
    elif m == 2:
        u = abs(y)
        llrs = (-four * (two * y - _clip(y, -two, two)), four * (u - two), _F(0.0))
    else:
        u = abs(y)
        b0 = -four * (four * y - _clip(y, -two, two) - _clip(y, -four, four) - _clip(y, -six, six))
        b1 = four * (two * u - _clip(u, two, six) - four)
        b2 = four * (abs(u - four) - two)
        llrs = (b0, b1, b2)
    for j in range(m):
        value = llrs[j] * scale
        if order.size:
            out[order[k + j]] = value
        else:
            out[k + j] = value


@njit(cache=True, inline="always")
def _demap_rows(symbols, scale, m, bits_per_symbol, k_mod, order, out) -> None:
    n_nv = scale.size
    for row in range(symbols.size // n_nv):
        for j in range(n_nv):
            i = row * n_nv + j
            k = i * bits_per_symbol
            _axis(_F(symbols[i].real) / k_mod, m, scale[j], out, k, order)
            if bits_per_symbol > 1:
                _axis(_F(symbols[i].imag) / k_mod, m, scale[j], out, k + m, order)


@njit(cache=True)
def _demap_kernel(symbols, noise_var, bits_per_symbol, k_mod, order, out) -> None:
    k_mod2 = np.float64(k_mod * k_mod)
    scale = np.empty(noise_var.size, np.float32)  # squared PAM distance -> log-likelihood
    for j in range(noise_var.size):
        scale[j] = k_mod2 / max(np.float64(noise_var[j]), MIN_NOISE_VAR)
    # literal orders, so each loop is compiled for its constellation (a run-time order costs ~10x)
    if bits_per_symbol == 1:
        _demap_rows(symbols, scale, 1, 1, k_mod, order, out)
    elif bits_per_symbol == 2:
        _demap_rows(symbols, scale, 1, 2, k_mod, order, out)
    elif bits_per_symbol == 4:
        _demap_rows(symbols, scale, 2, 4, k_mod, order, out)
    else:
        _demap_rows(symbols, scale, 3, 6, k_mod, order, out)


@njit(cache=True)
def _windows_kernel(iq, starts, dc, ramp, start_phase, out) -> None:
    n = ramp.size
    for w in range(starts.size):
        s = starts[w]
        p = start_phase[w]
        for k in range(n):
            out[w, k] = (iq[s + k] - dc) * (ramp[k] * p)


def gather_windows(
    iq: np.ndarray, starts: np.ndarray, dc: np.complex64, ramp: np.ndarray, start_phase: np.ndarray, out: np.ndarray
) -> None:
    """Fill ``out`` (n_win, fft) complex64 with CFO-corrected FFT windows of ``iq`` ((n,) complex64).

    starts : (n_win,) int first sample of each window, all with ``start + fft <= n``.
    ramp : (fft,) complex64 per-sample factor; start_phase : (n_win,) complex64 per-window factor.
    """
    n_win, n = out.shape
    if starts.size != n_win or start_phase.size != n_win or ramp.size != n:
        raise PhyError(f"windows {out.shape} need {n_win} starts and phases and a ramp of {n}")
    if n_win and (starts.min() < 0 or starts.max() + n > iq.size):
        raise PhyError(
            f"a window of {n} samples starting in {starts.min()}..{starts.max()} leaves the buffer of {iq.size}"
        )
    _windows_kernel(iq, starts.astype(np.int64, copy=False), dc, ramp, start_phase, out)


def demap_into(
    symbols: np.ndarray, noise_var: np.ndarray, bits_per_symbol: int, order: np.ndarray, out: np.ndarray
) -> None:
    """Max-log LLRs (positive means 0) of equalized symbols, scattered into ``out``.

    symbols : (n,) complex64 equalized symbols (unit-energy constellation scale), finite.
    noise_var : (m,) float32 with n % m == 0, the noise variance of symbol i is noise_var[i % m].
    order : (n * bits_per_symbol,) intp destinations in ``out`` of the on-air bits, or empty for in place.
    out : float32 array receiving the LLRs (positions no bit maps to are left untouched).
    """
    if bits_per_symbol not in K_MOD:
        raise PhyError(f"bits_per_symbol must be 1, 2, 4 or 6, got {bits_per_symbol!r}")
    n_bits = symbols.size * bits_per_symbol
    if noise_var.size == 0 or symbols.size % noise_var.size:
        raise PhyError(f"{noise_var.size} noise variances cannot cycle over {symbols.size} symbols")
    if not (np.isfinite(noise_var).all() and (noise_var > 0).all()):
        raise PhyError("noise_var must be finite and > 0; floor the per-subcarrier noise estimate before demapping")
    if (order.size and (order.size != n_bits or order.max() >= out.size)) or (not order.size and out.size < n_bits):
        raise PhyError(
            f"{symbols.size} symbols of {bits_per_symbol} bits do not fit order {order.size} / out {out.size}"
        )
    _demap_kernel(
        symbols, noise_var.astype(np.float32, copy=False), bits_per_symbol, _F(K_MOD[bits_per_symbol]), order, out
    )
