"""``FrameLink`` over the real OFDM modem and a sample-level medium: link joins phy and the air.

``modulate_frame`` and ``heard`` are the one translation between the link's frames and the modem's bursts
and ``RxFrame`` records; the radio pump (testbed/node/pump.py) uses them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from testbed.errors import LinkError
from testbed.link.analog import ANALOG_MCS, frame_num_samples
from testbed.link.framelink import AirLog, Heard, TxFrame, Window
from testbed.link.medium import Burst, Medium
from testbed.phy import OfdmModem, PhyConfig
from testbed.phy.receiver import RxFrame


def modulate_frame(modem: OfdmModem, payload: bytes | np.ndarray, mcs: str, stream_id: int, seq: int) -> np.ndarray:
    """The burst of one frame: a data frame of ``payload`` bytes at ``mcs``, or an analog frame of the
    ``payload`` values when ``mcs`` is ANALOG_MCS."""
    if mcs == ANALOG_MCS:
        return modem.modulate_symbols(np.asarray(payload), stream_id=stream_id, seq=seq)
    return modem.modulate(payload, mcs, stream_id=stream_id, seq=seq)  # type: ignore[arg-type]


def heard(fr: RxFrame) -> Heard:
    """The link's record of a received burst: payload if its CRC passed; an analog frame's values and noise."""
    if fr.frame_type == "analog":
        return Heard(None, int(fr.stream_id), ANALOG_MCS, float(fr.snr_db), float(fr.cfo_hz), fr.channel,
                     symbols=fr.symbols, noise_var=float(fr.noise_var), seq=int(fr.seq))  # fmt: skip
    payload = bytes(fr.payload) if fr.crc_ok and fr.payload is not None else None
    return Heard(payload, int(fr.stream_id), fr.mcs, float(fr.snr_db), float(fr.cfo_hz), fr.channel, seq=int(fr.seq))


@dataclass
class PhyFrameLink:
    """Modulates each frame with ``modem``, puts the bursts on ``medium``, demodulates every receiver's
    window; data and analog frames alike are passed up."""

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
        return frame_num_samples(self.phy, payload_bytes, mcs)

    def exchange(self, frames: Sequence[TxFrame], receivers: Sequence[int], window_samples: int) -> Window:
        bursts = []
        for f in frames:
            iq = modulate_frame(self.modem, f.payload, f.mcs, f.stream_id, f.seq)
            if f.tx_gain_db:  # the sender's applied TX power relative to its link's reference
                iq = iq * np.float32(10.0 ** (f.tx_gain_db / 20.0))
            bursts.append(Burst(f.src, f.start_sample, iq))
        received = self.medium.air(bursts, receivers, window_samples)
        return Window({rx: [heard(fr) for fr in self.modem.demodulate(iq)] for rx, iq in received.items()},
                      window_samples)  # fmt: skip
