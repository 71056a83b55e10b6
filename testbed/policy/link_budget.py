"""Uplink link budget: SNR as a function of TX power.

The BS reports each UE's uplink SNR (Es/N0 per data subcarrier) measured while the UE sent at a known TX
power. Path loss and noise do not depend on the UE's power, so SNR moves dB for dB with it:
``snr_db(p) = snr_db_ref + (p_dbm - p_ref_dbm)``; the least power for an MCS is the one whose SNR reaches the
MCS's threshold (testbed/link/airtime.py ``McsPolicy.required_snr_db``), and the MCS and the airtime an upload
costs come from the link's one model (``LinkAirtime``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from testbed.errors import PolicyError

# Plausible ranges of reported numbers; outside them a report is refused as absurd rather than trusted.
SNR_RANGE_DB = (-30.0, 60.0)
TX_POWER_RANGE_DBM = (-100.0, 40.0)


@dataclass(frozen=True)
class ChannelReport:
    """One UE's uplink as the BS measured it: ``snr_db`` (Es/N0 per data subcarrier) while the UE sent at
    ``tx_power_dbm``; ``gain_db`` is the channel power gain (path loss as a negative number) when known."""

    ue_id: str
    snr_db: float
    tx_power_dbm: float
    gain_db: float | None = None

    def validate(self) -> None:
        """Raise PolicyError unless every number is finite and physically plausible."""
        checks = [("snr_db", self.snr_db, SNR_RANGE_DB), ("tx_power_dbm", self.tx_power_dbm, TX_POWER_RANGE_DBM)]
        for name, value, (lo, hi) in checks:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise PolicyError(
                    f"channel report of UE {self.ue_id!r}: {name}={value!r} must be finite and within {lo}..{hi}; "
                    "re-measure the uplink"
                )
        if self.gain_db is not None and not (math.isfinite(self.gain_db) and self.gain_db <= 0):
            raise PolicyError(
                f"channel report of UE {self.ue_id!r}: gain_db={self.gain_db!r} must be finite and <= 0 dB"
            )

    def snr_db_at(self, tx_power_dbm: float) -> float:
        """Uplink SNR if the UE transmitted at ``tx_power_dbm``."""
        return self.snr_db + (tx_power_dbm - self.tx_power_dbm)

    def power_for_snr_dbm(self, snr_db: float) -> float:
        """TX power at which the uplink SNR reaches ``snr_db``."""
        return self.tx_power_dbm + (snr_db - self.snr_db)
