"""Adaptive MCS choice: per link, the fastest coded MCS whose 10%-PER SNR plus a margin is below the
measured SNR; or one fixed MCS for experiments.

Default thresholds are ``Mcs.ideal_snr_db_per_10pct`` (ideal coded link, ../shared/ARCHITECTURE.md
reference table); measured curves from ``testbed phy ber`` replace them through ``thresholds_db``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from testbed.errors import LinkError
from testbed.phy.mcs import CODED_MCS, MCS_TABLE


def ideal_thresholds_db() -> dict[str, float]:
    """SNR (Es/N0 per subcarrier, dB) for 10% PER of each coded MCS on an ideal link."""
    return {name: float(MCS_TABLE[name].ideal_snr_db_per_10pct) for name in CODED_MCS}


@dataclass(frozen=True)
class McsPolicy:
    """How a sender picks its MCS.

    fixed_mcs : use this MCS always (experiments); None for adaptive.
    margin_db : safety margin over the 10%-PER threshold (estimation error, fading between frames).
    fallback_mcs : used while a link has no SNR measurement yet, and when no MCS clears its threshold.
    thresholds_db : 10%-PER SNR per MCS name; the candidates for adaptive choice.
    """

    fixed_mcs: str | None = None
    margin_db: float = 3.0
    fallback_mcs: str = "bpsk-1/2"
    thresholds_db: Mapping[str, float] = field(default_factory=ideal_thresholds_db)

    def __post_init__(self) -> None:
        for name in [self.fixed_mcs, self.fallback_mcs, *self.thresholds_db]:
            if name is not None and name not in MCS_TABLE:
                raise LinkError(f"unknown MCS {name!r} in McsPolicy; choose from {', '.join(MCS_TABLE)}")
        if not self.thresholds_db:
            raise LinkError("McsPolicy.thresholds_db is empty; give at least one MCS and its 10%-PER SNR")

    def choose(self, snr_db: float | None) -> str:
        """MCS for a link whose measured SNR is ``snr_db`` (None: not measured yet)."""
        if self.fixed_mcs is not None:
            return self.fixed_mcs
        if snr_db is None:
            return self.fallback_mcs
        ok = [n for n, t in self.thresholds_db.items() if t + self.margin_db <= snr_db]
        return max(ok, key=_bits_per_subcarrier) if ok else self.fallback_mcs


def _bits_per_subcarrier(name: str) -> Fraction:
    """Information bits per data subcarrier per OFDM symbol: the speed ranking of MCSs."""
    m = MCS_TABLE[name]
    return m.bits_per_symbol * (m.code_rate if m.code_rate is not None else Fraction(1))


def thresholds_from_per_sweep(sweep: Mapping[str, Any], channel: str = "awgn") -> dict[str, float]:
    """{mcs: SNR at 10% PER} from the JSON of ``testbed phy ber --json`` for one channel ("awgn",
    "multipath"); coded MCSs whose search found no crossing are left out. Raises LinkError if none is left."""
    per_mcs = sweep.get(channel)
    if not isinstance(per_mcs, Mapping):
        raise LinkError(f"no {channel!r} PER sweep in the given results (keys: {sorted(sweep)}); run testbed phy ber")
    out = {}
    for name, entry in per_mcs.items():
        snr = entry.get("snr_db_at_per_10pct") if isinstance(entry, Mapping) else None
        if name in CODED_MCS and snr is not None:
            out[name] = float(snr)
    if not out:
        raise LinkError(f"the {channel!r} PER sweep has no coded MCS with a 10%-PER SNR")
    return out
