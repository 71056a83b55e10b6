"""The IEEE 802.11 K=7 convolutional code: encoder, puncturing and a soft-decision Viterbi decoder.

Generators g0 = 133 and g1 = 171 (octal), output A0 B0 A1 B1 ... (IEEE 802.11-2020 17.3.5.6).
Rates 2/3 and 3/4 steal bits from the rate-1/2 mother code with the bit-stealing patterns of 17.3.5.6. The
decoder is an add-compare-select over the 32 butterflies of the 64-state trellis in numba with float32 path
metrics, per-step normalisation and one bit per state and step of survivor memory (two uint32 words), followed
by a traceback from state 0 (the caller appends ``layout.TAIL_BITS`` zeros before encoding).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numba import njit

from testbed.errors import PhyError
from testbed.phy.crc import check_bits, check_llrs

CONSTRAINT_LENGTH = 7
G0_OCTAL = 0o133  # output A, IEEE 802.11-2020 17.3.5.6
G1_OCTAL = 0o171  # output B

# Puncturing patterns over the mother-code stream A0 B0 A1 B1 ..., 1 = transmitted (IEEE 802.11-2020
# 17.3.5.6, bit-stealing figure): 2/3 sends A0 B0 A1 (steals B1); 3/4 sends A0 B0 A1 B2 (steals B1 and A2).
PUNCTURE_PATTERNS: dict[Fraction, np.ndarray] = {
    Fraction(1, 2): np.array([1, 1], dtype=bool),
    Fraction(2, 3): np.array([1, 1, 1, 0], dtype=bool),
    Fraction(3, 4): np.array([1, 1, 1, 0, 0, 1], dtype=bool),
}

# LLR magnitudes above this are rescaled (the decision is scale-invariant) so float32 metrics keep precision.
_MAX_LLR = np.float32(1e6)


def _parity(x: int) -> int:
    return bin(x).count("1") & 1


# Encoder register r (7 bits): bit 6 = current input x_n, bit 0 = x_{n-6}; both generators read it directly.
# _OUTPUT[r] = 2*A + B.
_OUTPUT = np.array([2 * _parity(r & G0_OCTAL) + _parity(r & G1_OCTAL) for r in range(128)], dtype=np.uint8)

# Decoder state s (6 bits) = r >> 1 after a step; input b moves s to (b << 5) | (s >> 1). Butterfly j joins
# predecessors 2j, 2j+1 to successors j (b=0) and j+32 (b=1). Both generators tap x_n and x_{n-6}, so the four
# branch outputs of a butterfly are (A, B) of (2j, b=0) and its complement: one metric +-m_j per butterfly,
# m_j = sa_j * llr_A + sb_j * llr_B with s = +1 where the expected bit is 0 (LLR > 0 means 0).
_SIGN_A = np.array([1 - 2 * _parity((2 * j) & G0_OCTAL) for j in range(32)], dtype=np.float32)
_SIGN_B = np.array([1 - 2 * _parity((2 * j) & G1_OCTAL) for j in range(32)], dtype=np.float32)


@njit(cache=True)
def encode_into(bits: np.ndarray, out: np.ndarray) -> None:
    """numba kernel behind :func:`conv_encode`: ``(n,) uint8`` bits -> ``out`` ``(2n,) uint8`` (for fused kernels)."""
    reg = 0
    for i in range(bits.size):
        reg = (reg >> 1) | (np.int64(bits[i]) << 6)
        pair = _OUTPUT[reg]
        out[2 * i] = pair >> 1
        out[2 * i + 1] = pair & 1


@njit(cache=True)
def _viterbi_kernel(llrs: np.ndarray, sign_a: np.ndarray, sign_b: np.ndarray, out: np.ndarray) -> None:
    n_steps = llrs.size // 2
    metric = np.full(64, -np.inf, dtype=np.float32)
    metric[0] = 0.0  # encoder starts in state 0
    new = np.empty(64, dtype=np.float32)
    survivors = np.empty((n_steps, 2), dtype=np.uint32)  # bit s%32 of word s//32: state s came from odd pred
    for t in range(n_steps):
        llr_a = llrs[2 * t]
        llr_b = llrs[2 * t + 1]
        low = np.uint32(0)
        high = np.uint32(0)
        for j in range(32):
            m = sign_a[j] * llr_a + sign_b[j] * llr_b
            even = metric[2 * j]
            odd = metric[2 * j + 1]
            to_low_even = even + m
            to_low_odd = odd - m
            to_high_even = even - m
            to_high_odd = odd + m
            pick_low = to_low_odd > to_low_even
            pick_high = to_high_odd > to_high_even
            new[j] = to_low_odd if pick_low else to_low_even
            new[j + 32] = to_high_odd if pick_high else to_high_even
            low |= np.uint32(pick_low) << np.uint32(j)
            high |= np.uint32(pick_high) << np.uint32(j)
        survivors[t, 0] = low
        survivors[t, 1] = high
        ref = new[0]  # state 0 is reachable at every step, so this is finite
        for s in range(64):
            metric[s] = new[s] - ref
    state = 0  # trellis terminated by the tail bits
    for t in range(n_steps - 1, -1, -1):
        bit = state >> 5
        if t < out.size:
            out[t] = bit
        from_odd = (survivors[t, bit] >> np.uint32(state & 31)) & np.uint32(1)
        state = ((state & 31) << 1) | np.int64(from_odd)


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Rate-1/2 mother-code encoding of ``(n,) uint8`` bits from state 0; returns ``(2n,) uint8`` A0 B0 A1 B1 ...

    The caller appends ``layout.TAIL_BITS`` zeros to ``bits`` so the decoder can end in state 0.
    """
    check_bits(bits)
    out = np.empty(2 * bits.size, dtype=np.uint8)
    encode_into(np.ascontiguousarray(bits), out)  # one compiled layout
    return out


def _pattern(rate: Fraction) -> np.ndarray:
    try:
        return PUNCTURE_PATTERNS[Fraction(rate)]
    except (KeyError, TypeError, ValueError):
        raise PhyError(f"code rate must be one of {', '.join(map(str, PUNCTURE_PATTERNS))}, got {rate!r}") from None


def puncture(coded: np.ndarray, rate: Fraction) -> np.ndarray:
    """Drop the stolen bits of ``(n_mother,) uint8`` mother-code output for ``rate`` (1/2 returns a copy).

    A trailing partial period keeps the prefix of the pattern, so the output length is
    ``sum(tile(pattern)[:n_mother])`` (whole periods when N_DBPS is whole, as ``mcs`` guarantees).
    """
    pattern = _pattern(rate)
    check_bits(coded, "coded bits")
    if pattern.all():
        return coded.copy()
    period = pattern.size
    n_whole = coded.size - coded.size % period
    kept = np.take(coded[:n_whole].reshape(-1, period), np.flatnonzero(pattern), axis=1)  # (n_periods, n_kept)
    return np.concatenate([kept.reshape(-1), coded[n_whole:][pattern[: coded.size - n_whole]]])


def depuncture(llrs: np.ndarray, rate: Fraction, n_mother: int) -> np.ndarray:
    """Put received ``(n_tx,) float32`` LLRs back at their mother-code positions; stolen positions get 0.0.

    Returns ``(n_mother,) float32``; ``n_tx`` must equal ``len(puncture(...))`` for ``n_mother`` bits.
    """
    pattern = _pattern(rate)
    llrs = check_llrs(llrs)
    if n_mother < 0 or n_mother % 2:
        raise PhyError(f"the mother code emits bit pairs, so n_mother must be even and >= 0, got {n_mother}")
    period = pattern.size
    n_whole = n_mother - n_mother % period
    keep = np.flatnonzero(pattern)
    n_tx_whole = n_whole // period * keep.size
    n_tx = n_tx_whole + int(pattern[: n_mother - n_whole].sum())
    if llrs.size != n_tx:
        raise PhyError(
            f"rate {rate} keeps {n_tx} of {n_mother} mother-code bits but {llrs.size} LLRs arrived; "
            "pass the LLRs of exactly one coded block"
        )
    out = np.zeros(n_mother, dtype=np.float32)
    out[:n_whole].reshape(-1, period)[:, keep] = llrs[:n_tx_whole].reshape(-1, keep.size)  # (n_periods, period)
    out[n_whole:][pattern[: n_mother - n_whole]] = llrs[n_tx_whole:]
    return out


def viterbi_decode(llrs: np.ndarray, n_bits: int) -> np.ndarray:
    """Soft-decision maximum-likelihood decoding of the mother code; returns the first ``n_bits`` bits.

    llrs : (2n,) float32 mother-code LLRs (positive means 0), depunctured, ending where the encoder is back in
        state 0: right after the encoded tail, or after unscrambled zero pad bits that follow it (the traceback
        starts from state 0 at the last pair).
    n_bits : how many decoded bits to return, 0..n (pass the count without the tail to drop it).
    Returns (n_bits,) uint8.
    """
    llrs = check_llrs(llrs)
    if llrs.size % 2:
        raise PhyError(f"the mother code has two LLRs per bit, got an odd count {llrs.size}; depuncture first")
    if not 0 <= n_bits <= llrs.size // 2:
        raise PhyError(f"n_bits={n_bits} must be in 0..{llrs.size // 2} (half the number of LLRs)")
    if llrs.size:
        peak = np.float32(max(llrs.max(), -llrs.min()))  # max |llr| without a temporary
        if peak > _MAX_LLR:
            llrs = llrs * (_MAX_LLR / peak)
    out = np.empty(n_bits, dtype=np.uint8)
    _viterbi_kernel(np.ascontiguousarray(llrs), _SIGN_A, _SIGN_B, out)
    return out
