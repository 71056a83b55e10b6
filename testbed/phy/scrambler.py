"""The IEEE 802.11 data scrambler, generator x^7 + x^4 + 1 (IEEE 802.11-2020 17.3.5.5).

The sequence has period 127, so each seed's period is generated once, cached, and tiled; scrambling is an XOR
and therefore its own inverse. Seed convention: bit 6 of ``seed`` is register cell x7 and bit 0 is x1; the
all-ones seed 127 gives the sequence printed in 17.3.5.5 (00001110 11110010 ...).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from testbed.errors import PhyError
from testbed.phy.crc import check_bits

PERIOD = 127  # maximal-length sequence of a degree-7 primitive polynomial


@cache
def _period(seed: int) -> np.ndarray:
    state = seed
    out = np.empty(PERIOD, dtype=np.uint8)
    for n in range(PERIOD):  # 127 steps once per seed, then cached
        bit = ((state >> 6) ^ (state >> 3)) & 1  # x7 XOR x4
        out[n] = bit
        state = ((state << 1) & 0x7F) | bit
    out.flags.writeable = False
    return out


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 1 <= seed <= PERIOD:
        raise PhyError(f"scrambler seed must be an integer in 1..127 (0 would stall the register), got {seed!r}")


def scrambler_sequence(seed: int, n: int) -> np.ndarray:
    """The first ``n`` bits, ``(n,) uint8``, of the scrambler output for initial state ``seed`` (1..127)."""
    _check_seed(seed)
    if n < 0:
        raise PhyError(f"sequence length must be >= 0, got {n}")
    return np.tile(_period(int(seed)), -(-n // PERIOD))[:n]


def scrambler_period(seed: int) -> np.ndarray:
    """One read-only period, ``(127,) uint8``, of the scrambler output for ``seed`` (1..127); cached."""
    _check_seed(seed)
    return _period(int(seed))


def scramble(bits: np.ndarray, seed: int) -> np.ndarray:
    """XOR ``(n,) uint8`` bits with the scrambler sequence of ``seed``; applying it twice restores ``bits``."""
    check_bits(bits)
    return bits ^ scrambler_sequence(seed, bits.size)
