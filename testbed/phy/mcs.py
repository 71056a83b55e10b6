"""Modulation and coding schemes.

Coded MCSs follow IEEE 802.11a (K=7 convolutional code, rates 1/2, 2/3, 3/4 by puncturing); the
``*-uncoded`` entries send scrambled bits with no FEC, for BER measurement against theory.
``ideal_snr_db_per_10pct`` is the reference Es/N0 per data subcarrier for 10% PER on 1000-byte frames
(ideal coded link, perfect CSI; ../shared/ARCHITECTURE.md, Reference numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from testbed.errors import PhyError


@dataclass(frozen=True)
class Mcs:
    """One modulation and coding scheme."""

    name: str
    index: int  # carried in the 4-bit header field
    bits_per_symbol: int  # 1 BPSK, 2 QPSK, 4 16QAM, 6 64QAM
    code_rate: Fraction | None  # None: uncoded
    ideal_snr_db_per_10pct: float | None = None

    @property
    def coded(self) -> bool:
        return self.code_rate is not None

    @property
    def modulation(self) -> str:
        return {1: "bpsk", 2: "qpsk", 4: "16qam", 6: "64qam"}[self.bits_per_symbol]

    def coded_bits_per_ofdm_symbol(self, num_data: int) -> int:
        """N_CBPS: coded bits carried by one OFDM symbol."""
        return num_data * self.bits_per_symbol

    def data_bits_per_ofdm_symbol(self, num_data: int) -> int:
        """N_DBPS: information bits per OFDM symbol; must be whole for the numerology to support this MCS."""
        n_cbps = self.coded_bits_per_ofdm_symbol(num_data)
        rate = self.code_rate if self.code_rate is not None else Fraction(1)
        n_dbps = n_cbps * rate
        if n_dbps.denominator != 1:
            raise PhyError(
                f"MCS {self.name} needs num_data * bits_per_symbol * rate to be whole; num_data={num_data} "
                "gives a fraction. Choose a subcarrier map with num_data divisible by 4."
            )
        return int(n_dbps)


_CODED = [
    ("bpsk-1/2", 1, Fraction(1, 2), 0.65),
    ("bpsk-3/4", 1, Fraction(3, 4), 3.1),
    ("qpsk-1/2", 2, Fraction(1, 2), 3.6),
    ("qpsk-3/4", 2, Fraction(3, 4), 6.1),
    ("16qam-1/2", 4, Fraction(1, 2), 9.5),
    ("16qam-3/4", 4, Fraction(3, 4), 12.6),
    ("64qam-2/3", 6, Fraction(2, 3), 17.0),
    ("64qam-3/4", 6, Fraction(3, 4), 18.2),
]
_UNCODED = [("bpsk-uncoded", 1), ("qpsk-uncoded", 2), ("16qam-uncoded", 4), ("64qam-uncoded", 6)]

#: Every MCS by name, in header-index order (coded first, robust to fast).
MCS_TABLE: dict[str, Mcs] = {
    **{name: Mcs(name, i, bps, rate, snr) for i, (name, bps, rate, snr) in enumerate(_CODED)},
    **{name: Mcs(name, 8 + i, bps, None) for i, (name, bps) in enumerate(_UNCODED)},
}
MCS_BY_INDEX: dict[int, Mcs] = {m.index: m for m in MCS_TABLE.values()}
CODED_MCS: tuple[str, ...] = tuple(name for name, *_ in _CODED)
UNCODED_MCS: tuple[str, ...] = tuple(name for name, _ in _UNCODED)


def get_mcs(name: str) -> Mcs:
    """Look up an MCS by name with an error that lists the valid names."""
    try:
        return MCS_TABLE[name]
    except KeyError:
        raise PhyError(f"unknown MCS {name!r}; choose one of {', '.join(MCS_TABLE)}") from None
