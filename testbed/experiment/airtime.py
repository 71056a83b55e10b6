"""Airtime of model broadcasts and uploads from the PHY's exact frame sizes (no DSP is run).

MCS per link: the highest coded MCS whose reference SNR for 10% PER (1000-byte frames,
testbed/phy/mcs.py) plus ``mcs_margin_db`` does not exceed the link SNR; below every MCS, BPSK 1/2.
PER model (documented in docs/learning.md): a waterfall anchored at the reference point,
  PER_1000(snr) = min(1, 0.1 * 10^(-(snr - snr_10pct) / slope_db_per_decade)),
scaled to a frame of L bytes as PER_L = 1 - (1 - PER_1000)^(L / 1000) (independent byte errors). Every lost
frame is repeated until received (ARQ), so a frame costs 1 / (1 - PER_L) transmissions on average. A
broadcast is charged at the worst receiver's PER (a lower bound on multi-receiver repair). Analog frames
(semantic symbols) are not repaired. Payloads are cut into frames of ``frame_payload_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.errors import ConfigError
from testbed.phy.layout import analog_burst_num_samples, burst_num_samples
from testbed.phy.mcs import CODED_MCS, Mcs, get_mcs
from testbed.phy.numerology import PhyConfig

REFERENCE_FRAME_BYTES = 1000  # frame size of the 10%-PER reference SNRs (ARCHITECTURE.md, Reference numbers)
REFERENCE_PER = 0.1
MAX_USABLE_PER = 0.99


@dataclass(frozen=True)
class LinkModel:
    """Framing and PER-model parameters."""

    frame_payload_bytes: int = 1500
    analog_frame_symbols: int = 4800
    mcs_margin_db: float = 1.0
    per_slope_db_per_decade: float = 1.0


class PhyAirtime:
    """Implements ``testbed.learning.clock.Airtime`` from testbed/phy/layout.py frame lengths."""

    def __init__(self, phy: PhyConfig, link: LinkModel) -> None:
        if not 1 <= link.frame_payload_bytes <= phy.max_payload_bytes:
            raise ConfigError(f"frame_payload_bytes={link.frame_payload_bytes} must be in 1..{phy.max_payload_bytes}")
        self.phy, self.link = phy, link

    def choose_mcs(self, snr_db: float) -> Mcs:
        """Highest coded MCS with reference SNR + margin <= ``snr_db`` (BPSK 1/2 if none fits)."""
        fitting = [
            get_mcs(n) for n in CODED_MCS if get_mcs(n).ideal_snr_db_per_10pct + self.link.mcs_margin_db <= snr_db
        ]
        return (
            max(fitting, key=lambda m: m.data_bits_per_ofdm_symbol(self.phy.num_data))
            if fitting
            else get_mcs(CODED_MCS[0])
        )

    def frame_error_rate(self, snr_db: float, mcs: Mcs, payload_bytes: int) -> float:
        """Expected PER of one frame of ``payload_bytes`` at ``snr_db`` (model in the module docstring)."""
        excess_db = snr_db - mcs.ideal_snr_db_per_10pct
        per_ref = min(1.0, REFERENCE_PER * 10.0 ** (-excess_db / self.link.per_slope_db_per_decade))
        return 1.0 - (1.0 - per_ref) ** (payload_bytes / REFERENCE_FRAME_BYTES)

    def _digital_s(self, payload_bytes: int, snr_db: float) -> float:
        if payload_bytes <= 0:
            return 0.0
        mcs = self.choose_mcs(snr_db)
        full, rest = divmod(payload_bytes, self.link.frame_payload_bytes)
        samples = 0.0
        for size, count in ((self.link.frame_payload_bytes, full), (rest, 1 if rest else 0)):
            if count:
                per = self.frame_error_rate(snr_db, mcs, size)
                if per > MAX_USABLE_PER:
                    raise ConfigError(
                        f"link at {snr_db:.1f} dB loses {per:.1%} of {size}-byte frames even at {mcs.name}; "
                        "raise its SNR or TX power"
                    )
                samples += count * burst_num_samples(self.phy, size, mcs) / (1.0 - per)
        return samples / self.phy.sample_rate_hz

    def broadcast_s(self, payload_bytes: int, worst_snr_db: float) -> float:
        return self._digital_s(payload_bytes, worst_snr_db)

    def upload_s(self, payload_bytes: int, snr_db: float) -> float:
        return self._digital_s(payload_bytes, snr_db)

    def analog_upload_s(self, num_symbols: int) -> float:
        full, rest = divmod(num_symbols, self.link.analog_frame_symbols)
        samples = full * analog_burst_num_samples(self.phy, self.link.analog_frame_symbols)
        if rest:
            samples += analog_burst_num_samples(self.phy, rest)
        return samples / self.phy.sample_rate_hz

    def describe(self, snr_db: float) -> str:
        """'qpsk-3/4 @ 4.50 Mbit/s' for a link at ``snr_db`` (for logs and tables)."""
        mcs = self.choose_mcs(snr_db)
        rate = mcs.data_bits_per_ofdm_symbol(self.phy.num_data) / self.phy.symbol_duration_s
        return f"{mcs.name} @ {rate / 1e6:.2f} Mbit/s"
