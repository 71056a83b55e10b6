"""The IEEE 802.11 two-step block interleaver (IEEE 802.11-2020 17.3.5.7), for bits and for LLRs.

Within each OFDM symbol of N_CBPS coded bits, the first permutation puts adjacent coded bits on subcarriers
far apart; the second alternates them between more and less significant bits of the constellation, so a
faded subcarrier or a weak bit position does not hit a run of consecutive bits of the Viterbi decoder.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from testbed.errors import PhyError
from testbed.phy.crc import check_bits, check_llrs

_COLUMNS = 16  # the standard writes N_CBPS bits into a 16-column block (IEEE 802.11-2020 17.3.5.7)


@lru_cache(maxsize=32)
def _permutations(n_cbps: int, n_bpsc: int) -> tuple[np.ndarray, np.ndarray]:
    """(interleave gather, deinterleave gather): ``out = block[gather]`` for each direction."""
    k = np.arange(n_cbps)
    i = (n_cbps // _COLUMNS) * (k % _COLUMNS) + k // _COLUMNS  # 17.3.5.7 first permutation
    s = max(n_bpsc // 2, 1)
    j = s * (i // s) + (i + n_cbps - (_COLUMNS * i) // n_cbps) % s  # second permutation: input k goes to j
    to_output = np.empty(n_cbps, dtype=np.intp)
    to_output[j] = k  # interleaved position j reads input bit k
    j.flags.writeable = False
    to_output.flags.writeable = False
    return to_output, j


def _blocks(values: np.ndarray, n_cbps: int, n_bpsc: int) -> np.ndarray:
    if n_bpsc not in (1, 2, 4, 6):
        raise PhyError(f"n_bpsc must be 1, 2, 4 or 6 coded bits per subcarrier, got {n_bpsc!r}")
    if n_cbps <= 0 or n_cbps % _COLUMNS or n_cbps % n_bpsc:
        raise PhyError(
            f"n_cbps={n_cbps} must be a positive multiple of {_COLUMNS} and of n_bpsc={n_bpsc} "
            "(data subcarriers * bits per subcarrier, e.g. 48 * 4 = 192)"
        )
    if isinstance(values, np.ndarray) and values.dtype == np.uint8:
        values = check_bits(values, "interleaver input bits")
    else:
        values = check_llrs(values, "interleaver input (uint8 bits or float32 LLRs)")
    if values.size % n_cbps:
        raise PhyError(
            f"interleaving works on whole OFDM symbols of n_cbps={n_cbps} values, got {values.size}; pad first"
        )
    return values.reshape(-1, n_cbps)  # (n_symbols, n_cbps)


def interleave(bits: np.ndarray, n_cbps: int, n_bpsc: int) -> np.ndarray:
    """Interleave ``(m*n_cbps,)`` uint8 bits (or float32 values) block by block; same shape and dtype."""
    blocks = _blocks(bits, n_cbps, n_bpsc)
    return blocks[:, _permutations(n_cbps, n_bpsc)[0]].reshape(-1)


def deinterleave(values: np.ndarray, n_cbps: int, n_bpsc: int) -> np.ndarray:
    """Undo :func:`interleave` on ``(m*n_cbps,)`` float32 LLRs (or uint8 bits); same shape and dtype."""
    blocks = _blocks(values, n_cbps, n_bpsc)
    return blocks[:, _permutations(n_cbps, n_bpsc)[1]].reshape(-1)
