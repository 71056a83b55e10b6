"""The UE end of the control plane: one DEALER socket driven by one event loop (Paranoid Pirate, zguide ch. 4).

The client registers with HELLO and keeps the registration alive: a HEARTBEAT every interval, answered by
the BS. If the BS stays silent for ``liveness_intervals`` intervals, or says BYE, the client opens a fresh
socket and registers again, retrying with exponential backoff. Application messages (ASSIGN, ROUND_START, ...)
come out of :meth:`ControlClient.poll` as events; refused ones are counted in ``rejections`` by reason.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from types import TracebackType
from typing import Literal

import zmq

from testbed.control.config import ClientConfig, Event
from testbed.control.protocol import (
    FROM_BS,
    ROUND_SCOPED_FROM_BS,
    Assign,
    Body,
    Bye,
    Envelope,
    Error,
    Heartbeat,
    Hello,
    Reason,
    Rejected,
    RoundStart,
    Welcome,
    decode,
    encode,
    make_envelope,
    reply_to,
)
from testbed.control.security import PLAINTEXT_WARNING, CurveClientKeys, Plaintext, harden, secure_client
from testbed.errors import ConfigError, ProtocolError

log = logging.getLogger(__name__)


class ControlClient:
    """DEALER socket to the BS with registration, heartbeats, liveness and reconnect-with-backoff."""

    def __init__(
        self, config: ClientConfig, security: CurveClientKeys | Plaintext, context: zmq.Context | None = None
    ) -> None:
        if isinstance(security, Plaintext):
            log.warning(PLAINTEXT_WARNING)
        self.config = config
        self.security = security
        self.session_id = secrets.randbits(63)  # a nonce per process, not experiment randomness: no seed
        self.state: Literal["connecting", "registered"] = "connecting"
        self.round = 0  # the last round the BS started (or announced in WELCOME)
        self.server_session_id: int | None = None
        self.heartbeat_interval_s = config.heartbeat_interval_s
        self.rejections: Counter[str] = Counter()
        self.transport: Counter[str] = Counter()  # "connects" (fresh sockets), "send_queue_full"
        self._own_context = context is None
        self._context = zmq.Context() if context is None else context
        self._seq = 0
        self._hello_seq = 0
        self._server_seq = 0
        self._retry_s = config.retry_initial_s
        self._retry_at_s = 0.0
        self._last_rx_s = 0.0
        self._next_heartbeat_s = 0.0
        self._closed = False
        self._sock: zmq.Socket = self._open_socket()
        self._hello()

    # --- the event loop -------------------------------------------------------------------------------

    def poll(self, timeout_s: float | None = None) -> list[Event]:
        """One loop pass: wait for the BS (at most until the next timer), handle messages, run timers."""
        self._check_open()
        now = time.monotonic()
        next_timer_s = self._retry_at_s if self.state == "connecting" else self._next_heartbeat_s
        wait_s = min(self.heartbeat_interval_s if timeout_s is None else timeout_s, max(0.0, next_timer_s - now))
        events: list[Event] = []
        if self._sock.poll(max(0.0, wait_s) * 1e3):
            for _ in range(self.config.queue_limit_messages):  # bounded, so the timers below always run
                try:
                    frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                events += self._handle(frames)
        return events + self._run_timers(time.monotonic())

    def _run_timers(self, now: float) -> list[Event]:
        if self.state == "connecting":
            if now >= self._retry_at_s:
                self._retry_s = min(2 * self._retry_s, self.config.retry_max_s)
                if self._retry_s == self.config.retry_max_s:  # at most one line per retry_max_s
                    log.warning(
                        "no WELCOME from %s yet: is the BS running, is %s's key on its allow-list, and is the BS "
                        "public key this UE uses the right one?",
                        self.config.server_endpoint,
                        self.config.ue_id,
                    )
                self._connect()
            return []
        if now - self._last_rx_s > self.config.liveness_intervals * self.heartbeat_interval_s:
            log.warning("BS silent for %d heartbeat intervals; reconnecting", self.config.liveness_intervals)
            self._retry_s = self.config.retry_initial_s
            self._connect()
            return [Event("gone", self.config.ue_id, self.round)]
        if now >= self._next_heartbeat_s:
            self._next_heartbeat_s = now + self.heartbeat_interval_s
            self.send(Heartbeat())
        return []

    def _handle(self, frames: list[zmq.Frame]) -> list[Event]:
        if len(frames) != 1:
            return self._reject("bad_frames", f"{len(frames)} frames; the BS sends exactly one")
        try:
            env = decode(frames[0].buffer)
            return self._dispatch(env)
        except Rejected as exc:
            return self._reject(exc.reason, exc.detail)

    def _dispatch(self, env: Envelope) -> list[Event]:
        body, now = env.body, time.monotonic()
        if type(body) not in FROM_BS:
            raise Rejected("wrong_direction", f"{env.type} is sent by a UE, not by the BS")
        if env.ue_id != self.config.ue_id:
            raise Rejected("wrong_ue_id", f"addressed to {env.ue_id!r}, this is {self.config.ue_id!r}")
        if isinstance(body, Welcome):
            return self._welcome(env, body, now)
        if isinstance(body, Error) and body.code == "wrong_ue_id" and env.corr_id == self._hello_seq:
            raise ConfigError(
                f"the BS refused ue_id {self.config.ue_id!r}: {body.detail}; give this UE the ue_id its key is "
                "allow-listed under, or the secret key of that id"
            )
        if self.state != "registered":
            raise Rejected("unexpected", f"{env.type} before WELCOME")
        if env.seq <= self._server_seq:
            raise Rejected("replayed_seq", f"BS seq {env.seq} <= last accepted {self._server_seq}")
        self._server_seq, self._last_rx_s = env.seq, now
        if isinstance(body, Heartbeat):
            return []
        if isinstance(body, Error) and body.code == "not_registered":
            log.info("BS does not know us (%s); registering again", body.detail)
            self._hello()
            return []
        if isinstance(body, Bye):
            log.info("BS said BYE (%s); registering again with backoff", body.reason)
            self.state, self._retry_s = "connecting", self.config.retry_initial_s
            self._retry_at_s = now + self._retry_s
            return [Event("gone", self.config.ue_id, self.round)]
        if isinstance(body, RoundStart):
            if env.round <= self.round:
                raise Rejected("stale_round", f"ROUND_START for round {env.round}; already at {self.round}")
            self.round = env.round
        elif (type(body) in ROUND_SCOPED_FROM_BS and env.round != self.round) or (
            isinstance(body, Assign) and env.round < self.round
        ):
            raise Rejected("stale_round", f"{env.type} for round {env.round}; current round {self.round}")
        return [Event("message", env.ue_id, env.round, env)]

    def _welcome(self, env: Envelope, body: Welcome, now: float) -> list[Event]:
        if self.state != "connecting" or env.corr_id != self._hello_seq or body.session_id != self.session_id:
            raise Rejected("unexpected", f"WELCOME for seq {env.corr_id}; our last HELLO was seq {self._hello_seq}")
        self.state, self.server_session_id = "registered", body.server_session_id
        self._server_seq, self._last_rx_s = env.seq, now  # a restarted BS counts from 1 again
        self.heartbeat_interval_s, self.round = body.heartbeat_interval_s, body.current_round
        self._next_heartbeat_s, self._retry_s = now + self.heartbeat_interval_s, self.config.retry_initial_s
        log.info("registered with BS (round %d)", self.round)
        return [Event("registered", self.config.ue_id, self.round)]

    def _reject(self, reason: Reason, detail: str) -> list[Event]:
        self.rejections[reason] += 1
        log.debug("rejected (%s): %s", reason, detail)
        return []

    # --- connection ----------------------------------------------------------------------------------

    def _connect(self) -> None:
        """A reconnect is a fresh socket: nothing queued for the old connection survives it."""
        self._sock.close(linger=0)
        self._sock = self._open_socket()
        self._hello()

    def _open_socket(self) -> zmq.Socket:
        sock = self._context.socket(zmq.DEALER)
        harden(sock, max_message_bytes=self.config.max_message_bytes, hwm=self.config.queue_limit_messages)
        sock.setsockopt(zmq.RECONNECT_IVL, int(self.config.reconnect_ivl_s * 1e3))
        secure_client(sock, self.security)
        sock.connect(self.config.server_endpoint)
        self.transport["connects"] += 1
        return sock

    def _hello(self) -> None:
        self.state = "connecting"
        self._retry_at_s = time.monotonic() + self._retry_s
        self._hello_seq = self._transmit(Hello(self.session_id, self.config.software_version)).seq

    def _transmit(self, body: Body, request: Envelope | None = None) -> Envelope:
        self._seq += 1
        if request is None:
            env = make_envelope(body, ue_id=self.config.ue_id, seq=self._seq, round=self.round)
        else:
            env = reply_to(request, body, seq=self._seq, round=self.round)
        try:
            self._sock.send(encode(env), zmq.NOBLOCK)
        except zmq.Again:
            self.transport["send_queue_full"] += 1
        return env

    def _check_open(self) -> None:
        if self._closed:
            raise ProtocolError(f"client {self.config.ue_id} is closed; create a new ControlClient to rejoin")

    def send(self, body: Body) -> Envelope:
        """Send an application message to the BS (registered only); returns its envelope."""
        self._check_open()
        if self.state != "registered":
            raise ProtocolError(f"{self.config.ue_id} is not registered yet; wait for the 'registered' event")
        return self._transmit(body)

    def reply(self, request: Envelope, body: Body) -> Envelope:
        """Answer a BS message (e.g. CAPABILITY_ENQUIRY): ``corr_id`` = its seq."""
        self._check_open()
        if self.state != "registered":
            raise ProtocolError(f"{self.config.ue_id} is not registered; cannot answer {request.type}")
        return self._transmit(body, request)

    # --- lifetime ------------------------------------------------------------------------------------

    def close(self, *, say_bye: bool = True) -> None:
        """Say BYE if registered (unless simulating a crash), close the socket and an owned context."""
        if self._closed:
            return
        self._closed = True
        linger_ms = 0
        if say_bye and self.state == "registered":
            self._transmit(Bye("client closing"))
            linger_ms = int(self.heartbeat_interval_s * 1e3)
        self._sock.close(linger=linger_ms)
        if self._own_context:
            self._context.term()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
