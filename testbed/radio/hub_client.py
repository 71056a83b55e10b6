"""Hub backend: a Radio whose air is a virtual-RF hub process (``testbed hub --scenario FILE``).

The node joins the hub on its first ``configure`` (the hub checks carrier and rate against the scenario).
``receive`` blocks until the hub's shared clock has reached the end of the window, i.e. until every other
node has either transmitted into it or promised not to; ``timeout_s`` bounds that wait in wall-clock time.
"""

from __future__ import annotations

import threading
import time

import msgspec
import numpy as np
import zmq

from testbed.errors import ConfigError, RadioError
from testbed.radio.base import Radio, RadioConfig, RxBlock
from testbed.radio.protocol import (
    PROTOCOL_VERSION,
    AirInfo,
    Bye,
    Configure,
    Error,
    Hello,
    Query,
    Receive,
    Samples,
    Transmit,
    TxAck,
    Welcome,
    check_local_endpoint,
    decode_reply,
    encode,
)

CANCEL_POLL_MS = 100  # how soon a wait for the hub notices ``cancel``


class HubRadio(Radio):
    """One node of the virtual air.

    endpoint : the hub's endpoint (tcp://127.0.0.1:PORT or ipc://PATH).
    node_id : this node's id in the hub's scenario.
    timeout_s : longest wait for any reply (a receive waits for the slowest node).
    cancel : set from another thread to end a wait at once (a daemon stopping while the hub is gone would
        otherwise sit out ``timeout_s``); the radio is then closed.
    """

    def __init__(
        self,
        endpoint: str,
        node_id: str,
        timeout_s: float = 30.0,
        context: zmq.Context | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self.endpoint, self.node_id, self.timeout_s = check_local_endpoint(endpoint), node_id, timeout_s
        self._cancel = cancel or threading.Event()
        self._sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._welcome: Welcome | None = None

    @property
    def start_sample(self) -> int:
        """Where this node's clock started on the hub (0 unless it joined late)."""
        if self._welcome is None:
            raise RadioError("not joined yet: call configure() first")
        return self._welcome.start_sample

    @property
    def nodes(self) -> list[str]:
        """Every node id in the hub's scenario."""
        if self._welcome is None:
            raise RadioError("not joined yet: call configure() first")
        return list(self._welcome.nodes)

    def query(self) -> AirInfo:
        """The hub's carrier, sample rate and per-node TX power, asked without joining, so the radio can be
        configured to match (``configure`` must use this carrier and rate)."""
        self._check_open()
        reply, _ = self._request(Query())
        if not isinstance(reply, AirInfo):
            raise RadioError(f"hub answered Query with {type(reply).__name__}, expected AirInfo")
        return reply

    def _request(self, msg: msgspec.Struct, iq: np.ndarray | None = None) -> tuple[msgspec.Struct, np.ndarray | None]:
        self._sock.send_multipart(encode(msg, iq), copy=False)
        deadline_s = time.monotonic() + self.timeout_s
        while not self._sock.poll(CANCEL_POLL_MS):
            if self._cancel.is_set():
                self._broken(f"stopped while waiting for the hub at {self.endpoint}", hint=False)
            if time.monotonic() >= deadline_s:
                self._broken(f"no reply from the hub at {self.endpoint} within {self.timeout_s:g} s")
        frames = self._sock.recv_multipart(copy=False)
        reply, samples = decode_reply([f.buffer for f in frames])
        if isinstance(reply, Error):
            err = ConfigError if reply.code == "config" else RadioError
            raise err(f"hub refused {type(msg).__name__} from node {self.node_id!r}: {reply.message}")
        return reply, samples

    def _broken(self, why: str, hint: bool = True) -> None:
        """A reply may still be in flight: the connection can no longer pair requests with replies."""
        self._closed = True
        self._sock.close(linger=0)
        check = "; is the hub running and are the other nodes alive?" if hint else ""
        raise RadioError(f"{why}{check} This radio is now closed")

    def _apply(self, config: RadioConfig) -> None:
        if self._welcome is None:
            hello = Hello(PROTOCOL_VERSION, self.node_id, config.center_freq_hz, config.sample_rate_hz)
            reply, _ = self._request(hello)
            if not isinstance(reply, Welcome):
                raise RadioError(f"hub answered Hello with {type(reply).__name__}, expected Welcome")
            self._welcome = reply
        elif (config.center_freq_hz, config.sample_rate_hz) != (
            self._welcome.center_freq_hz,
            self._welcome.sample_rate_hz,
        ):
            raise ConfigError(
                f"the hub runs at {self._welcome.center_freq_hz:g} Hz, {self._welcome.sample_rate_hz:g} S/s; "
                "carrier and rate cannot change on the virtual air"
            )
        self._request(Configure(config.tx_power_dbm, config.rx_gain_mode, config.rx_gain_db))

    def _transmit(self, iq: np.ndarray, at_sample: int | None) -> int:
        reply, _ = self._request(Transmit(iq.size, at_sample), iq)
        if not isinstance(reply, TxAck):
            raise RadioError(f"hub answered Transmit with {type(reply).__name__}, expected TxAck")
        return reply.start_sample

    def _receive(self, num_samples: int) -> RxBlock:
        reply, samples = self._request(Receive(num_samples))
        if not isinstance(reply, Samples) or samples is None:
            raise RadioError(f"hub answered Receive with {type(reply).__name__}, expected Samples")
        return RxBlock(samples.copy(), reply.start_sample)

    def _close(self) -> None:
        try:
            if self._welcome is not None:
                self._sock.send_multipart(encode(Bye()), zmq.NOBLOCK)
                self._sock.poll(500)
        except zmq.ZMQError:
            pass  # the hub is gone; closing is all that is left to do
        finally:
            self._sock.close(linger=0)
