"""``FrameLink`` over the real OFDM modem and a sample-level medium: link joins phy and the air."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testbed.errors import LinkError
from testbed.link.framelink import AirLog, Heard, TxFrame, Window
from testbed.link.medium import Burst, Medium
from testbed.phy import OfdmModem, PhyConfig
from testbed.phy.layout import burst_num_samples


@dataclass
class PhyFrameLink:
    """Modulates each frame with ``modem``, puts the bursts on ``medium``, demodulates every receiver's
    window. Only data frames are passed up (analog frames belong to other users of the PHY)."""

    modem: OfdmModem
    medium: Medium

    def __post_init__(self) -> None:
        if self.modem.cfg.sample_rate_hz != self.medium.sample_rate_hz:
            raise LinkError(
                f"modem runs at {self.modem.cfg.sample_rate_hz:g} S/s but the medium at "
                f"{self.medium.sample_rate_hz:g} S/s; configure both with the same sample rate"
            )

    @property
    def phy(self) -> PhyConfig:
        return self.modem.cfg

    @property
    def air_log(self) -> AirLog:
        return self.medium.air_log

    def burst_num_samples(self, payload_bytes: int, mcs: str) -> int:
        return burst_num_samples(self.phy, payload_bytes, mcs)

    def exchange(self, frames: Sequence[TxFrame], receivers: Sequence[int], window_samples: int) -> Window:
        bursts = []
        for f in frames:
            iq = self.modem.modulate(f.payload, f.mcs, stream_id=f.stream_id, seq=f.seq)
            if f.tx_gain_db:  # the sender's applied TX power relative to its link's reference
                iq = iq * np.float32(10.0 ** (f.tx_gain_db / 20.0))
            bursts.append(Burst(f.src, f.start_sample, iq))
        heard = {}
        for rx, iq in self.medium.air(bursts, receivers, window_samples).items():
            heard[rx] = [
                Heard(
                    payload=fr.payload if fr.crc_ok else None,
                    stream_id=fr.stream_id,
                    mcs=fr.mcs,
                    snr_db=float(fr.snr_db),
                    cfo_hz=float(fr.cfo_hz),
                    channel=fr.channel,
                )
                for fr in self.modem.demodulate(iq)
                if fr.frame_type == "data"
            ]
        return Window(heard, window_samples)
