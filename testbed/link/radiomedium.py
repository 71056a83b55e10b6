"""``Medium`` over testbed.radio backends: each node's bursts go out through its own ``Radio``, and every
node then receives the whole window, so all radios' clocks stay in step window by window.

All radios of the medium are driven from this process. The in-process loopback serves a receive at once
(transmit first, then receive: program order is the schedule). A hub radio's receive waits until every
other node has received or promised not to transmit into the window, so with hub radios the receives must
run concurrently (``parallel_receive=True``: one thread per radio for the duration of the receive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from testbed.errors import LinkError
from testbed.link.framelink import AirLog
from testbed.link.medium import Burst
from testbed.radio.base import Radio, RxBlock


@dataclass
class RadioMedium:
    """radios : one configured Radio per link-layer node id (all at ``sample_rate_hz``).
    start_sample : the radios' common receive-clock position when this medium takes them over."""

    radios: Mapping[int, Radio]
    parallel_receive: bool = False
    start_sample: int = 0
    air_log: AirLog = field(default_factory=AirLog)

    def __post_init__(self) -> None:
        rates = {r.config.sample_rate_hz for r in self.radios.values()}
        if len(rates) != 1:
            raise LinkError(f"all radios of a medium must share one sample rate, got {sorted(rates)}")

    @property
    def sample_rate_hz(self) -> float:
        return next(iter(self.radios.values())).config.sample_rate_hz

    def air(self, bursts: Sequence[Burst], receivers: Sequence[int], window_samples: int) -> dict[int, np.ndarray]:
        missing = sorted(({b.src for b in bursts} | set(receivers)) - set(self.radios))
        if missing:
            raise LinkError(f"no radio for node(s) {missing}; the medium has {sorted(self.radios)}")
        clock = self.start_sample + self.air_log.clock_samples
        self.air_log.record_window([(b.src, b.start_sample, b.iq.size) for b in bursts], window_samples)
        for b in bursts:
            self.radios[b.src].transmit(b.iq, at_sample=clock + b.start_sample)
        nodes = list(self.radios)
        if self.parallel_receive:
            with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
                blocks = list(pool.map(lambda n: self.radios[n].receive(window_samples), nodes))
        else:
            blocks = [self.radios[n].receive(window_samples) for n in nodes]
        heard = {}
        for node, block in zip(nodes, blocks, strict=True):
            _check_block(node, block, clock, window_samples)
            if node in receivers:
                heard[node] = block.iq
        return heard


def _check_block(node: int, block: RxBlock, clock: int, window_samples: int) -> None:
    if block.start_sample != clock or block.iq.size != window_samples or block.overflow:
        raise LinkError(
            f"node {node}: radio returned {block.iq.size} samples from {block.start_sample}"
            f"{' with overflow' if block.overflow else ''}, expected {window_samples} from {clock}; the radios' "
            "clocks are out of step (give every node of the air to this medium, or set start_sample)"
        )
