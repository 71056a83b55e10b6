"""What the hub sends out beside serving its nodes, all off by default: raw-IQ taps and SigMF captures.

**Tap** (``HubOutputs.taps = {node_id: endpoint}``): one ZeroMQ PUB socket per tapped node, bound to a local
endpoint (``tcp://127.0.0.1:PORT``, ``*`` for any free port, or ``ipc://PATH``). Every receive block the hub
delivers to that node is published as one single-part message holding exactly those samples: interleaved
little-endian float32 I, Q (complex64, 8 bytes per sample), full-scale units (what the node's RX gain made
of the air), no header, no topic. GNU Radio's ZMQ SUB Source reads it with ``type`` complex, ``vlen`` 1 and
``pass_tags`` off; a pyzmq SUB reads ``np.frombuffer(msg, "<c8")``. PUB drops whole messages for a
subscriber that falls behind (``TAP_HWM`` messages queued) and never slows the hub; a subscriber sees only
what is published after it connected. ``tx_taps`` likewise publish every burst a node transmits, as it sent
it (before the channel), one message per burst: the silence between bursts is not in the stream.

**Captures** (``capture_dir`` and ``capture_nodes``): ``<capture_dir>/<node>-rx.sigmf-data/-meta``, the same
SigMF stream a ``RecordingRadio`` writes (testbed.radio.sigmf_io): every sample the node received, a new
capture at each clock jump (a rejoin) or settings change, with the node's carrier, rate and gains. The
metadata is written when the hub closes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zmq

from testbed.errors import ConfigError
from testbed.radio.base import RadioConfig, RxBlock
from testbed.radio.protocol import check_local_endpoint
from testbed.radio.scenario import Scenario

if TYPE_CHECKING:
    from testbed.radio.sigmf_io import SigmfStream

TAP_HWM = 64  # messages queued per subscriber before PUB drops (64 blocks of 16384 samples: 8 MiB)


@dataclass(frozen=True)
class HubOutputs:
    """The hub's optional outputs. taps : node id -> local endpoint to publish its receive blocks on;
    capture_dir, capture_nodes : SigMF captures of what those nodes receive; tx_taps : node id -> endpoint
    for the bursts it transmits."""

    taps: Mapping[str, str] = field(default_factory=dict)
    capture_dir: Path | None = None
    capture_nodes: tuple[str, ...] = ()
    tx_taps: Mapping[str, str] = field(default_factory=dict)

    def check(self, scenario: Scenario) -> None:
        """ConfigError for a node the scenario lacks, a non-local endpoint or captures without a directory."""
        for node_id in [*self.taps, *self.tx_taps, *self.capture_nodes]:
            scenario.node(node_id)
        for endpoint in [*self.taps.values(), *self.tx_taps.values()]:
            check_local_endpoint(endpoint)
        if self.capture_nodes and self.capture_dir is None:
            raise ConfigError("hub captures need a directory (--capture-dir) to write the SigMF files into")


def hub_capture_args(scenario: Scenario, node_ids: Sequence[str], directory: str | Path) -> list[str]:
    """Arguments to add to ``testbed hub --scenario FILE`` so that it writes SigMF captures of what
    ``node_ids`` receive into ``directory`` (``<directory>/<node>-rx.sigmf-*``, metadata written when the
    hub stops on SIGINT/SIGTERM; a relative ``directory`` is taken from the hub's working directory). ConfigError
    for an id the scenario lacks or an empty list."""
    if not node_ids:
        raise ConfigError("hub captures need at least one node id")
    HubOutputs(capture_dir=Path(directory), capture_nodes=tuple(node_ids)).check(scenario)
    args = ["--capture-dir", str(directory)]
    for node_id in dict.fromkeys(node_ids):
        args += ["--capture", node_id]
    return args


class OutputSink:
    """The open sockets and files of ``HubOutputs``; the hub calls ``configured`` and ``received``."""

    def __init__(self, scenario: Scenario, outputs: HubOutputs, context: zmq.Context) -> None:
        outputs.check(scenario)
        self._scenario = scenario
        self._config = {
            spec.id: RadioConfig(center_freq_hz=scenario.center_freq_hz, sample_rate_hz=scenario.sample_rate_hz,
                                 tx_power_dbm=spec.tx_power_dbm, rx_gain_db=0.0)  # as Air.join powers a radio up
            for spec in scenario.nodes
        }  # fmt: skip
        self._pubs: dict[tuple[str, str], zmq.Socket] = {}  # (stream "rx"/"tx", node id) -> PUB socket
        self._streams: dict[str, SigmfStream] = {}
        try:
            for kind, taps in (("rx", outputs.taps), ("tx", outputs.tx_taps)):
                for node_id, endpoint in taps.items():
                    sock = context.socket(zmq.PUB)
                    self._pubs[kind, node_id] = sock
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.setsockopt(zmq.SNDHWM, TAP_HWM)
                    try:
                        sock.bind(endpoint)
                    except zmq.ZMQError as exc:
                        raise ConfigError(f"the {kind} tap of node {node_id!r} cannot bind {endpoint}: {exc}") from exc
            if outputs.capture_nodes and outputs.capture_dir is not None:  # check() refused nodes without a dir
                from testbed.radio.sigmf_io import SigmfStream  # the sigmf library only when capturing

                outputs.capture_dir.mkdir(parents=True, exist_ok=True)
                for node_id in dict.fromkeys(outputs.capture_nodes):
                    self._streams[node_id] = SigmfStream(outputs.capture_dir / node_id, "rx", "cf32_le")
        except BaseException:
            self.close()
            raise

    @property
    def endpoints(self) -> dict[str, str]:
        """node id -> where its receive tap is bound."""
        return self._bound("rx")

    @property
    def tx_endpoints(self) -> dict[str, str]:
        """node id -> where its transmit tap is bound."""
        return self._bound("tx")

    def _bound(self, kind: str) -> dict[str, str]:
        return {node: sock.getsockopt_string(zmq.LAST_ENDPOINT) for (k, node), sock in self._pubs.items() if k == kind}

    @property
    def captures(self) -> dict[str, str]:
        """node id -> stem of its capture files."""
        return {node_id: str(stream.base) for node_id, stream in self._streams.items()}

    def configured(self, node_id: str, tx_power_dbm: float, rx_gain_mode: str, rx_gain_db: float) -> None:
        """A node's radio settings changed (they go into its capture's metadata)."""
        self._config[node_id] = self._config[node_id].with_(
            tx_power_dbm=tx_power_dbm, rx_gain_mode=rx_gain_mode, rx_gain_db=rx_gain_db
        )

    def received(self, node_id: str, block: RxBlock) -> None:
        """``block`` was delivered to ``node_id``: publish it on the node's tap and append it to its capture."""
        self._publish("rx", node_id, block.iq)
        stream = self._streams.get(node_id)
        if stream is not None:
            stream.append(block.iq, block.start_sample, self._config[node_id], force_new=block.overflow)

    def transmitted(self, node_id: str, iq: np.ndarray) -> None:
        """``node_id`` put the burst ``iq`` on the air: publish it on the node's transmit tap."""
        self._publish("tx", node_id, iq)

    def _publish(self, kind: str, node_id: str, iq: np.ndarray) -> None:
        pub = self._pubs.get((kind, node_id))
        if pub is not None:
            try:
                pub.send(iq.astype("<c8", copy=False).data, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                pass  # no room for a slow subscriber: PUB drops, the air goes on

    def close(self) -> None:
        """Write the captures' metadata and close the taps (idempotent)."""
        streams, self._streams = self._streams, {}
        try:
            for node_id, stream in streams.items():
                stream.close(
                    self._scenario.sample_rate_hz,
                    f"testbed hub, node {node_id}",
                    "what the node received on the hub's air",
                    {"backend": "hub", "node": node_id},
                )
        finally:
            pubs, self._pubs = self._pubs, {}
            for sock in pubs.values():
                sock.close(linger=0)
