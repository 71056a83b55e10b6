"""The public OFDM modem: one object per numerology that modulates bursts and demodulates buffers."""

from __future__ import annotations

import numpy as np

from testbed.phy import layout
from testbed.phy.numerology import PhyConfig
from testbed.phy.receiver import Receiver, RxFrame, RxStats
from testbed.phy.tracking import PilotTracker
from testbed.phy.transmitter import Transmitter


class OfdmModem:
    """Transmitter and streaming receiver of one :class:`PhyConfig`; every table is built once here.

    estimator : channel-estimator name from ``estimation.ESTIMATORS`` ("dft" default, "ls").
    tracker : pilot tracker (default :class:`PilotTracker` with its default smoothing windows).
    data_aided : when a coded frame fails its CRC, estimate the channel again with the decoded frame as pilots
        and decode once more (costs receive time only on failed frames).
    """

    def __init__(
        self,
        cfg: PhyConfig | None = None,
        *,
        estimator: str = "dft",
        tracker: PilotTracker | None = None,
        data_aided: bool = True,
    ):
        self.cfg = cfg if cfg is not None else PhyConfig()
        self._tx = Transmitter(self.cfg)
        self._rx = Receiver(self.cfg, estimator=estimator, tracker=tracker, data_aided=data_aided)

    def modulate(self, payload: bytes, mcs: str = "qpsk-1/2", *, stream_id: int = 0, seq: int = 0) -> np.ndarray:
        """A data burst: ``(burst_num_samples(len(payload), mcs),) complex64`` with unit average power.

        stream_id : 0..255, seq : 0..65535 (header fields; seq also seeds the scrambler).
        """
        return self._tx.data_burst(payload, mcs, stream_id, seq)

    def modulate_symbols(self, symbols: np.ndarray, *, stream_id: int = 0, seq: int = 0) -> np.ndarray:
        """An analog burst carrying ``(n,) complex`` symbols directly on the data subcarriers.

        The symbols are scaled to unit mean power (send them normalized: the receiver returns them at that
        scale). Returns ``(analog_burst_num_samples(n),) complex64`` with unit average power.
        """
        return self._tx.analog_burst(symbols, stream_id, seq)

    def demodulate(self, iq: np.ndarray) -> list[RxFrame]:
        """Every burst found in ``iq`` ((n,) complex baseband, n <= 2**26), in order; see :class:`RxFrame`."""
        return self._rx.demodulate(iq)

    def burst_num_samples(self, payload_bytes: int, mcs: str) -> int:
        """Exact length of ``modulate`` output (layout.burst_num_samples)."""
        return layout.burst_num_samples(self.cfg, payload_bytes, mcs)

    def analog_burst_num_samples(self, n: int) -> int:
        """Exact length of ``modulate_symbols`` output for ``n`` symbols."""
        return layout.analog_burst_num_samples(self.cfg, n)

    @property
    def stats(self) -> RxStats:
        """Receiver counters: detections, header failures, payload CRC failures, truncated bursts, frames."""
        return self._rx.stats

    def reset_stats(self) -> None:
        self._rx.reset_stats()
