"""Per-link channel measurements from the frames a node hears, summarised as bounded ``ChannelReport``s.

Every detected frame counts (also those whose payload failed the CRC: the preamble still measured the
channel), so a link that loses frames still gets an SNR and MCS choice can step down.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from testbed.errors import LinkError
from testbed.link.framelink import Heard
from testbed.link.messages import MAX_SUBCARRIERS, ChannelReport


class ChannelTracker:
    """Keeps the last ``depth`` frames heard on each (tx_node, rx_node) link."""

    def __init__(self, depth: int = 16) -> None:
        if depth < 1:
            raise LinkError(f"ChannelTracker depth={depth} must be >= 1")
        self.depth = depth
        self._frames: dict[tuple[int, int], deque[Heard]] = {}

    def add(self, tx_node: int, rx_node: int, heard: Heard) -> None:
        """Record one frame ``rx_node`` heard from ``tx_node``."""
        self._frames.setdefault((tx_node, rx_node), deque(maxlen=self.depth)).append(heard)

    def state(self) -> list[list]:
        """What was heard, as plain lists (a checkpoint): [tx, rx, [[payload ok, stream, mcs, snr, cfo], ...]].
        Channel estimates are left out: a restored tracker reports SNR, CFO and success, not the estimate."""
        return [[tx, rx, [[h.payload is not None, h.stream_id, h.mcs, h.snr_db, h.cfo_hz] for h in frames]]
                for (tx, rx), frames in self._frames.items()]  # fmt: skip

    @classmethod
    def from_state(cls, state: list[list], depth: int = 16) -> ChannelTracker:
        tracker = cls(depth)
        for tx, rx, frames in state:
            for ok, stream, mcs, snr, cfo in frames:
                tracker.add(int(tx), int(rx), Heard(b"" if ok else None, int(stream), mcs, float(snr), float(cfo)))
        return tracker

    def links(self) -> list[tuple[int, int]]:
        return sorted(self._frames)

    def snr_db(self, tx_node: int, rx_node: int) -> float | None:
        """dB of the mean linear SNR over the recent frames of the link, None if none was heard."""
        frames = self._frames.get((tx_node, rx_node))
        if not frames:
            return None
        snrs = np.array([h.snr_db for h in frames if math.isfinite(h.snr_db)])
        return float(10 * np.log10(np.mean(10 ** (snrs / 10)))) if snrs.size else None

    def report(self, tx_node: int, rx_node: int) -> ChannelReport | None:
        """Summary of the link for the control plane; None if nothing was heard on it."""
        frames = self._frames.get((tx_node, rx_node))
        snr = self.snr_db(tx_node, rx_node)
        if not frames or snr is None:
            return None
        last = next((h.channel for h in reversed(frames) if h.channel is not None), None)
        gains = [float(np.mean(np.abs(h.channel) ** 2)) for h in frames if h.channel is not None]
        cfos = [h.cfo_hz for h in frames if math.isfinite(h.cfo_hz)]
        chan = np.zeros(0, np.complex64) if last is None else np.asarray(last, np.complex64)[:MAX_SUBCARRIERS]
        return ChannelReport(
            tx_node=tx_node,
            rx_node=rx_node,
            num_frames=len(frames),
            snr_db=snr,
            mean_gain_db=float(10 * np.log10(np.mean(gains))) if gains and np.mean(gains) > 0 else None,
            cfo_hz=float(np.mean(cfos)) if cfos else 0.0,
            frame_success=sum(h.payload is not None for h in frames) / len(frames),
            channel_re=chan.real.astype(float).tolist(),
            channel_im=chan.imag.astype(float).tolist(),
        )
