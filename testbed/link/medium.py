"""The sample-level medium: moves bursts of IQ samples from nodes to a set of receivers, one window at a time.

``Medium`` is the interface (radio backends get an adapter with the same shape); ``SimulatedMedium`` is the
in-process implementation: a channel model per ordered (tx, rx) link, from testbed/channel, and injectable
frame loss (a lost burst reaches that receiver as silence, so it hears only the link's noise there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from testbed.errors import LinkError
from testbed.link.framelink import AirLog

ChannelModel = Callable[[np.ndarray], np.ndarray]  # testbed.channel models: (n,) complex64 -> (n,) complex64


@dataclass(frozen=True)
class Burst:
    """iq : (n,) complex64 unit-power burst from node ``src`` starting at ``start_sample`` of the window."""

    src: int
    start_sample: int
    iq: np.ndarray


class Medium(Protocol):
    """Anything that puts a window of bursts on air and returns what each receiver heard."""

    @property
    def sample_rate_hz(self) -> float: ...

    @property
    def air_log(self) -> AirLog: ...

    def air(self, bursts: Sequence[Burst], receivers: Sequence[int], window_samples: int) -> dict[int, np.ndarray]:
        """Transmit ``bursts`` within a window of ``window_samples``; returns per receiver the
        (window_samples,) complex64 samples it heard over the window."""
        ...


@dataclass
class SimulatedMedium:
    """In-process medium.

    links : channel model per (tx_node, rx_node); e.g. ``Chain([Multipath(...), Awgn(snr_db, rng, ...)])``.
        Models are applied per burst, padded with ``pad_samples`` of silence on each side so noise
        surrounds the burst; the rest of the window stays zero.
    rng : draws the injected losses. frame_loss : probability a burst is lost at a receiver (per receiver).
    """

    sample_rate_hz: float
    links: Mapping[tuple[int, int], ChannelModel]
    rng: np.random.Generator
    frame_loss: float = 0.0
    pad_samples: int = 40
    air_log: AirLog = field(default_factory=AirLog)

    def __post_init__(self) -> None:
        if not 0.0 <= self.frame_loss <= 1.0 or self.pad_samples < 0:
            raise LinkError(f"frame_loss={self.frame_loss} must be in [0, 1] and pad_samples={self.pad_samples} >= 0")

    def air(self, bursts: Sequence[Burst], receivers: Sequence[int], window_samples: int) -> dict[int, np.ndarray]:
        self.air_log.record_window([(b.src, b.start_sample, b.iq.size) for b in bursts], window_samples)
        heard = {}
        pad = np.zeros(self.pad_samples, np.complex64)
        for rx in receivers:
            out = np.zeros(window_samples, np.complex64)
            for b in bursts:
                if b.src == rx:
                    continue
                model = self.links.get((b.src, rx))
                if model is None:
                    raise LinkError(f"no channel model from node {b.src} to node {rx}; add links[({b.src}, {rx})]")
                lost = self.rng.random() < self.frame_loss
                y = model(np.concatenate([pad, np.zeros_like(b.iq) if lost else b.iq, pad]))
                lo = b.start_sample - self.pad_samples
                hi = min(lo + y.size, window_samples)
                out[max(lo, 0) : hi] += y[max(-lo, 0) : hi - lo]
            heard[rx] = out
        return heard


def star_links(
    phy_occupied_fraction: float, sample_rate_hz: float, snr_db: Sequence[float], rng: np.random.Generator, *,
    cfo_hz: float = 0.0, rms_delay_spread_samples: float = 0.0,
) -> dict[tuple[int, int], ChannelModel]:  # fmt: skip
    """Channel models for a BS (node 0) and UEs 1..len(snr_db), both directions, UE i at ``snr_db[i-1]``:
    optional Rayleigh multipath (block fading per burst), carrier offset, then AWGN (testbed/channel)."""
    # imported here: a node's radio path uses Burst and Medium only, and needs none of the channel models
    from testbed.channel import Awgn, Chain, FrequencyOffset, Multipath

    links: dict[tuple[int, int], ChannelModel] = {}
    for ue, snr in enumerate(snr_db, start=1):
        for pair, sign in (((0, ue), 1.0), ((ue, 0), -1.0)):
            models: list[ChannelModel] = []
            if rms_delay_spread_samples > 0:
                models.append(Multipath(rms_delay_spread_samples, rng))
            if cfo_hz:
                models.append(FrequencyOffset(sign * cfo_hz, sample_rate_hz))
            models.append(Awgn(float(snr), rng, occupied_fraction=phy_occupied_fraction))
            links[pair] = Chain(models)
    return links
