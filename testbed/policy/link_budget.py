"""Uplink link budget: SNR as a function of TX power, the MCS a power affords, and exact upload airtime.

The BS reports each UE's uplink SNR (Es/N0 per data subcarrier) measured while the UE sent at a known TX
power. Path loss and noise do not depend on the UE's power, so SNR moves dB for dB with it:
``snr_db(p) = snr_db_ref + (p_dbm - p_ref_dbm)``. A coded MCS is usable when ``snr_db >=
ideal_snr_db_per_10pct + margin_db`` (testbed/phy/mcs.py), so the least power for an MCS is
``p_ref_dbm + ideal + margin - snr_db_ref``. Airtime is the exact burst length from testbed/phy/layout.py
at the PHY's sample rate, with payloads split into frames of at most ``max_payload_bytes``.
"""

from __future__ import annotations

import math

from testbed.errors import PolicyError
from testbed.link.messages import ChannelReport
from testbed.phy.layout import MAX_ANALOG_SYMBOLS, analog_burst_num_samples, burst_num_samples
from testbed.phy.mcs import CODED_MCS, Mcs, get_mcs
from testbed.phy.numerology import PhyConfig

# Plausible ranges of reported numbers; outside them a report is refused as absurd rather than trusted.
SNR_RANGE_DB = (-30.0, 60.0)
TX_POWER_RANGE_DBM = (-100.0, 40.0)


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


def required_snr_db(mcs: Mcs, margin_db: float) -> float:
    """SNR a coded MCS needs: its 10%-PER reference plus the configured margin."""
    if mcs.ideal_snr_db_per_10pct is None:
        raise PolicyError(f"MCS {mcs.name} has no SNR reference; the policy only uses coded MCSs {CODED_MCS}")
    return mcs.ideal_snr_db_per_10pct + margin_db


def highest_mcs(channel: ChannelReport, tx_power_dbm: float, margin_db: float) -> Mcs | None:
    """The fastest coded MCS the link supports at ``tx_power_dbm`` (None when even the most robust fails)."""
    snr = channel.snr_db_at(tx_power_dbm)
    usable = [m for m in map(get_mcs, CODED_MCS) if required_snr_db(m, margin_db) <= snr]
    return usable[-1] if usable else None


def mcs_power_options(
    channel: ChannelReport, margin_db: float, min_tx_power_dbm: float, max_tx_power_dbm: float
) -> list[tuple[Mcs, float]]:
    """Each coded MCS reachable within the power range, with the least power (dBm) that reaches it."""
    options = []
    for mcs in map(get_mcs, CODED_MCS):
        power = max(channel.power_for_snr_dbm(required_snr_db(mcs, margin_db)), min_tx_power_dbm)
        if power <= max_tx_power_dbm:
            options.append((mcs, power))
    return options


def digital_airtime_s(cfg: PhyConfig, payload_bytes: int, mcs: Mcs) -> float:
    """Seconds on air to send ``payload_bytes`` at ``mcs`` in frames of at most ``cfg.max_payload_bytes``."""
    if payload_bytes < 0:
        raise PolicyError(f"payload_bytes={payload_bytes} must be >= 0")
    full, rest = divmod(payload_bytes, cfg.max_payload_bytes)
    samples = full * burst_num_samples(cfg, cfg.max_payload_bytes, mcs)
    if rest:
        samples += burst_num_samples(cfg, rest, mcs)
    return samples / cfg.sample_rate_hz


def analog_airtime_s(cfg: PhyConfig, num_symbols: int, frame_symbols: int = MAX_ANALOG_SYMBOLS) -> float:
    """Seconds on air to send ``num_symbols`` complex values in analog frames of ``frame_symbols`` (no MCS)."""
    if num_symbols < 0:
        raise PolicyError(f"num_symbols={num_symbols} must be >= 0")
    if not 1 <= frame_symbols <= MAX_ANALOG_SYMBOLS:
        raise PolicyError(f"frame_symbols={frame_symbols} must be in 1..{MAX_ANALOG_SYMBOLS}")
    full, rest = divmod(num_symbols, frame_symbols)
    samples = full * analog_burst_num_samples(cfg, frame_symbols)
    if rest:
        samples += analog_burst_num_samples(cfg, rest)
    return samples / cfg.sample_rate_hz
