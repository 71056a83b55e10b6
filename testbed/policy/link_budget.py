"""Uplink link budget: SNR as a function of TX power.

The BS reports each UE's uplink SNR (Es/N0 per data subcarrier) measured while the UE sent at a known TX
power. Path loss and noise do not depend on the UE's power, so SNR moves dB for dB with it:
``snr_db(p) = snr_db_ref + (p_dbm - p_ref_dbm)``; the least power for an MCS is the one whose SNR reaches the
MCS's threshold (testbed/link/airtime.py ``McsPolicy.required_snr_db``), and the MCS and the airtime an upload
costs come from the link's one model (``LinkAirtime``).
"""

from __future__ import annotations

import math

from testbed.errors import PolicyError
from testbed.link.messages import ChannelReport

# Plausible ranges of reported numbers; outside them a report is refused as absurd rather than trusted.
SNR_RANGE_DB = (-30.0, 60.0)
TX_POWER_RANGE_DBM = (-100.0, 40.0)
TX_DRAW_OFFSET_RANGE_DB = (0.0, 60.0)  # a radio's draw while transmitting above its RF output


def validate_channel(ue_id: str, channel: ChannelReport) -> None:
    """PolicyError unless the report's SNR and TX power are finite and physically plausible (the policy moves
    the SNR with power, so the power it was measured at must be known)."""
    checks = [("snr_db", channel.snr_db, SNR_RANGE_DB), ("tx_power_dbm", channel.tx_power_dbm, TX_POWER_RANGE_DBM)]
    for name, value, (lo, hi) in checks:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
            raise PolicyError(
                f"channel report of UE {ue_id!r}: {name}={value!r} must be finite and within {lo}..{hi}; "
                "re-measure the uplink"
            )
    if channel.mean_gain_db is not None and not math.isfinite(channel.mean_gain_db):
        raise PolicyError(f"channel report of UE {ue_id!r}: mean_gain_db={channel.mean_gain_db!r} must be finite")
