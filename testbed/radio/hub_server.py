"""The virtual-RF hub: one process owning the ``Air``, serving any number of node clients over ZeroMQ.

One event loop (a ROUTER socket); every request is answered or held (a receive window waits until the
time model in testbed.radio.air allows it). A malformed message, an unknown node id or a peer that vanishes
costs that peer an ``Error`` reply or its place on the air, never the hub: the others keep being served.
Peers that disconnect are seen through a socket monitor (the connection's file descriptor, recorded at
Hello, names the node), so a killed node process releases the clock. Optional outputs (a raw-IQ tap per
node, SigMF captures) are testbed.radio.hub_outputs.
"""

from __future__ import annotations

import logging
import threading
import time

import msgspec
import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from testbed.errors import ConfigError, ProtocolError, RadioError
from testbed.radio.air import Air
from testbed.radio.base import RadioConfig
from testbed.radio.hub_outputs import HubOutputs, OutputSink
from testbed.radio.loopback import check_matches_scenario
from testbed.radio.protocol import (
    PROTOCOL_VERSION,
    AirInfo,
    Bye,
    Configure,
    Error,
    Hello,
    Ok,
    Query,
    Receive,
    Samples,
    Transmit,
    TxAck,
    Welcome,
    check_local_endpoint,
    decode_request,
    encode,
)
from testbed.radio.scenario import Scenario

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:*"
DROP_GRACE_S = 0.05


class HubServer:
    """Bind, then ``serve`` until ``stop`` is set (or call ``step`` from your own loop)."""

    def __init__(
        self,
        scenario: Scenario,
        endpoint: str = DEFAULT_ENDPOINT,
        context: zmq.Context | None = None,
        workers: int = 2,
        outputs: HubOutputs | None = None,
    ):
        """workers : threads computing noise and links in parallel (see Air); results do not depend on it.
        outputs : taps and captures of what nodes receive (testbed.radio.hub_outputs); none by default."""
        check_local_endpoint(endpoint)
        self._ctx = context or zmq.Context.instance()
        self.outputs = OutputSink(scenario, outputs or HubOutputs(), self._ctx)
        self.air = Air(scenario, workers=workers)
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close()
            self.outputs.close()
            self.air.close()
            raise ConfigError(f"hub cannot bind {endpoint}: {exc}") from exc
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._monitor = self._sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._node_of: dict[bytes, str] = {}
        self._peer_of: dict[str, bytes] = {}
        self._fd_of: dict[bytes, int] = {}
        self._gone: dict[bytes, float] = {}  # peer -> monotonic time to drop it
        self.errors_sent = 0

    def serve(self, stop: threading.Event | None = None, poll_interval_s: float = DROP_GRACE_S) -> None:
        """Run the loop; the poll timeout is how often ``stop`` is checked."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.step(poll_interval_s)

    def step(self, timeout_s: float) -> int:
        """Handle every message that arrives within ``timeout_s``; returns how many were handled."""
        handled = 0
        if self._poller.poll(int(timeout_s * 1000)):
            self._read_disconnects()
            while True:
                try:
                    frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._handle(frames)
                handled += 1
        now = time.monotonic()
        for peer, deadline in list(self._gone.items()):
            if deadline <= now:
                del self._gone[peer]
                self._drop(peer, "disconnected")
        self._serve_ready()
        return handled

    def close(self) -> None:
        self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=0)
        self.air.close()
        self.outputs.close()

    def _read_disconnects(self) -> None:
        """Note peers whose connection closed. They are dropped DROP_GRACE_S later, because their last
        requests may become readable after the disconnect event. Called before every Hello is registered,
        so a new connection that reuses a closed descriptor is never mistaken for the old one."""
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            if event["event"] == zmq.EVENT_DISCONNECTED:
                for peer, fd in self._fd_of.items():
                    if fd == event["value"]:
                        self._gone.setdefault(peer, time.monotonic() + DROP_GRACE_S)

    # --- one message ----------------------------------------------------------------------------------
    def _handle(self, frames: list[zmq.Frame]) -> None:
        peer = frames[0].bytes
        try:
            msg, iq = decode_request([f.buffer for f in frames[1:]])
            if isinstance(msg, Hello):
                self._read_disconnects()  # a closed descriptor this connection may reuse is noted first
            reply, samples = self._dispatch(peer, msg, iq)
            if isinstance(reply, Welcome):
                self._fd_of[peer] = frames[-1].get(zmq.SRCFD)
        except ProtocolError as exc:
            reply, samples = Error("malformed", str(exc)), None
        except ConfigError as exc:
            reply, samples = Error("config", str(exc)), None
        except RadioError as exc:
            reply, samples = Error("radio", str(exc)), None
        if isinstance(reply, Error):
            self.errors_sent += 1
            log.info("refused a request from %s: %s", self._node_of.get(peer, peer.hex()), reply.message)
        if reply is not None:
            self._send(peer, reply, samples)

    def _dispatch(
        self, peer: bytes, msg: msgspec.Struct, iq: np.ndarray | None
    ) -> tuple[msgspec.Struct | None, np.ndarray | None]:
        if isinstance(msg, Hello):
            return self._hello(peer, msg), None
        if isinstance(msg, Query):
            sc = self.air.scenario
            tx_power_dbm = {spec.id: spec.tx_power_dbm for spec in sc.nodes}
            return AirInfo(PROTOCOL_VERSION, sc.center_freq_hz, sc.sample_rate_hz, tx_power_dbm), None
        node_id = self._node_of.get(peer)
        if node_id is None:
            raise ProtocolError(f"{type(msg).__name__} from a peer that has not said Hello; send Hello first")
        if isinstance(msg, Configure):
            self.air.set_radio(node_id, msg.tx_power_dbm, msg.rx_gain_mode, msg.rx_gain_db)
            self.outputs.configured(node_id, msg.tx_power_dbm, msg.rx_gain_mode, msg.rx_gain_db)
            return Ok(), None
        if isinstance(msg, Transmit):
            start = self.air.transmit(node_id, iq, msg.at_sample)
            self.outputs.transmitted(node_id, iq)
            return TxAck(start, msg.num_samples), None
        if isinstance(msg, Receive):
            self.air.request(node_id, msg.num_samples)
            return None, None  # answered by _serve_ready when the window is complete
        if isinstance(msg, Bye):
            self._drop(peer, "said bye")
            return Ok(), None
        raise ProtocolError(f"unexpected message type {type(msg).__name__}")

    def _hello(self, peer: bytes, msg: Hello) -> Welcome:
        if msg.version != PROTOCOL_VERSION:
            raise ProtocolError(f"protocol version {msg.version} is not supported; this hub speaks {PROTOCOL_VERSION}")
        if peer in self._node_of:
            raise ProtocolError(f"this connection is already node {self._node_of[peer]!r}; open a new one")
        sc = self.air.scenario
        check_matches_scenario(
            RadioConfig(center_freq_hz=msg.center_freq_hz, sample_rate_hz=msg.sample_rate_hz), self.air
        )
        start = self.air.join(msg.node_id)  # ConfigError for an unknown id, RadioError for a duplicate
        self._node_of[peer], self._peer_of[msg.node_id] = msg.node_id, peer
        log.info("node %s joined at sample %d", msg.node_id, start)
        return Welcome(
            PROTOCOL_VERSION,
            msg.node_id,
            start,
            sc.center_freq_hz,
            sc.sample_rate_hz,
            sc.node(msg.node_id).tx_power_dbm,
            sc.node_ids,
        )

    def _drop(self, peer: bytes, why: str) -> None:
        self._fd_of.pop(peer, None)
        node_id = self._node_of.pop(peer, None)
        if node_id is not None:
            self._peer_of.pop(node_id, None)
            self.air.leave(node_id)
            log.info("node %s left (%s)", node_id, why)

    def _serve_ready(self) -> None:
        for node_id in self.air.waiting():
            if self.air.ready(node_id):
                block = self.air.collect(node_id)
                self.outputs.received(node_id, block)
                self._send(self._peer_of[node_id], Samples(block.start_sample, len(block.iq)), block.iq)

    def _send(self, peer: bytes, reply: msgspec.Struct, samples: np.ndarray | None) -> None:
        self._sock.send_multipart([peer, *encode(reply, samples)], copy=False)
