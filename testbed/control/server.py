"""The BS end of the control plane: one ROUTER socket driven by one event loop.

A daemon (or a test) calls :meth:`ControlServer.poll` in a loop; each pass waits at most one heartbeat
interval for messages, handles them (HELLO, HEARTBEAT and BYE itself; everything else is reported), then
expires silent UEs and checks the round deadline (STYLE.md #13). Every refused message is counted in
``rejections`` by reason and never reaches the application; the log gets at most one WARNING per
``reject_log_interval_s`` saying how many were refused and why, so a hostile client cannot fill it.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import zmq
from zmq.utils.monitor import recv_monitor_message

from testbed.control.config import Event, ServerConfig
from testbed.control.protocol import (
    FROM_UE,
    Body,
    Bye,
    CapabilityReport,
    ChannelReport,
    Envelope,
    Error,
    Heartbeat,
    Hello,
    Reason,
    Rejected,
    RoundEnd,
    RoundStart,
    UplinkDone,
    Welcome,
    decode,
    encode,
    make_envelope,
    reply_to,
)
from testbed.control.registry import Registry, RoundState, UeRecord
from testbed.control.security import CurveServerKeys, Plaintext, harden
from testbed.control.zap import secure_server
from testbed.errors import ProtocolError

log = logging.getLogger(__name__)

#: Refusals the sender can act on get an ERROR reply; the rest (garbage, replays) are dropped silently so
#: a misbehaving peer gains nothing by sending more. A wrong UE id is answered: the sender holds an
#: allow-listed key, and without the reply a misconfigured UE would wait forever for its WELCOME.
_ANSWERED_REASONS: frozenset[Reason] = frozenset({"not_registered", "wrong_ue_id"})


class RejectLog:
    """Rate-limited WARNINGs about refused messages: the first at once, then at most one per ``interval_s``
    summing what was refused since the last (count per reason and the latest detail)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._pending: Counter[str] = Counter()
        self._last_detail = ""
        self._next_s = -math.inf

    def note(self, reason: str, detail: str) -> None:
        """Count one refusal; log if the interval since the last line has passed."""
        self._pending[reason] += 1
        self._last_detail = detail
        self.flush(force=False)

    def flush(self, *, force: bool = True) -> None:
        """Log what is pending (if the interval passed, or always when ``force``)."""
        now = self._clock()
        if not self._pending or (not force and now < self._next_s):
            return
        total = sum(self._pending.values())
        reasons = ", ".join(f"{r} {n}" for r, n in self._pending.most_common())
        log.warning("refused %d control message(s) (%s); latest: %s", total, reasons, self._last_detail[:200])
        self._pending.clear()
        self._next_s = now + self.interval_s


class ControlServer:
    """ROUTER socket with CURVE allow-list authentication, UE registry and round bookkeeping."""

    def __init__(self, config: ServerConfig, security: CurveServerKeys | Plaintext) -> None:
        self.config = config
        self.curve = not isinstance(security, Plaintext)
        self.session_id = secrets.randbits(63)  # a nonce, not experiment randomness: no seed wanted
        self.registry = Registry()
        self.rejections: Counter[str] = Counter()
        self.reject_log = RejectLog(config.reject_log_interval_s)
        self.transport: Counter[str] = Counter()  # socket-monitor events (ACCEPTED, HANDSHAKE_FAILED_*, ...)
        self._seq = 0
        self._closed = False
        self._monitor: zmq.Socket | None = None
        self._context = zmq.Context()
        self._sock = self._context.socket(zmq.ROUTER)
        self._authenticator = None
        try:
            harden(self._sock, max_message_bytes=config.max_message_bytes, hwm=config.queue_limit_messages)
            self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            self._authenticator = secure_server(self._sock, security, self._context)
            self._monitor = self._sock.get_monitor_socket()
            self._sock.bind(config.bind_endpoint)
        except BaseException:
            self.close()
            raise
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        log.info("control server on %s (%s)", self.endpoint, "CURVE" if self.curve else "PLAIN TEXT")

    # --- the event loop -------------------------------------------------------------------------------

    def poll(self, timeout_s: float | None = None) -> list[Event]:
        """One loop pass: wait up to ``timeout_s`` (default: one heartbeat interval), handle, expire, report."""
        timeout = self.config.liveness_intervals * self.config.heartbeat_interval_s
        wait_s = self.config.heartbeat_interval_s if timeout_s is None else timeout_s
        wait_s = max(0.0, min(wait_s, self.registry.next_timer_s(timeout) - time.monotonic()))
        events: list[Event] = []
        ready = dict(self._poller.poll(wait_s * 1e3))
        if self._monitor in ready:
            self._drain_monitor()
        if self._sock in ready:
            for _ in range(self.config.max_batch_messages):
                try:
                    frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                events += self._handle(frames)
        events += self.registry.expire(time.monotonic(), timeout)
        self.reject_log.flush(force=False)
        for event in events:
            if event.kind in ("gone", "left"):
                log.info("UE %s %s", event.ue_id, event.kind)
        return events

    def _handle(self, frames: list[zmq.Frame]) -> list[Event]:
        if len(frames) != 2:
            return self._reject("bad_frames", f"{len(frames)} frames; a UE sends exactly one")
        route, frame = frames[0].bytes, frames[1]
        try:
            env = decode(frame.buffer)
        except Rejected as exc:
            return self._reject(exc.reason, exc.detail)
        try:
            return self._dispatch(env, route, frame)
        except Rejected as exc:
            if exc.reason in _ANSWERED_REASONS:
                error = Error(exc.reason, exc.detail[:256])
                self._send(route, reply_to(env, error, seq=self._next_seq(), round=self.round))
            return self._reject(exc.reason, exc.detail)

    def _dispatch(self, env: Envelope, route: bytes, frame: zmq.Frame) -> list[Event]:
        body = env.body
        if type(body) not in FROM_UE:
            raise Rejected("wrong_direction", f"{env.type} is sent by the BS, not by a UE")
        if self.curve and frame.get("User-Id") != env.ue_id:
            raise Rejected("wrong_ue_id", f"claims {env.ue_id!r}, key belongs to {frame.get('User-Id')!r}")
        now = time.monotonic()
        if isinstance(body, Hello):
            events = self.registry.hello(env, route, now)
            welcome = Welcome(body.session_id, self.session_id, self.config.heartbeat_interval_s, self.round)
            self._send(route, reply_to(env, welcome, seq=self._next_seq(), round=self.round))
            return events
        rec = self.registry.accept(env, route, now)
        if isinstance(body, Heartbeat):
            self._send(route, reply_to(env, Heartbeat(), seq=self._next_seq(), round=self.round))
            return []
        if isinstance(body, Bye):
            return self.registry.leave(env.ue_id, "left")
        if isinstance(body, UplinkDone):
            return self.registry.uplink_done(env)
        if isinstance(body, CapabilityReport):
            rec.capability = body
        elif isinstance(body, ChannelReport):
            rec.channel = body
        return [Event("message", env.ue_id, env.round, env)]

    def _reject(self, reason: Reason, detail: str) -> list[Event]:
        self.rejections[reason] += 1
        self.reject_log.note(reason, detail)
        return []

    def _drain_monitor(self) -> None:
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self.transport[zmq.Event(event["event"]).name] += 1

    # --- sending ----------------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, route: bytes, env: Envelope) -> bool:
        """Queue without blocking the loop; a vanished or congested UE costs a count, not a stall."""
        try:
            self._sock.send_multipart([route, encode(env)], zmq.NOBLOCK)
        except zmq.Again:
            self.transport["send_queue_full"] += 1
            return False
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self.transport["send_unroutable"] += 1
            return False
        return True

    def send(self, ue_id: str, body: Body) -> Envelope:
        """Send ``body`` to a live UE; returns the envelope (its ``seq`` is the correlation id of replies)."""
        rec = self._live(ue_id)
        env = make_envelope(body, ue_id=ue_id, seq=self._next_seq(), round=self.round)
        self._send(rec.route, env)
        return env

    def reply(self, request: Envelope, body: Body) -> Envelope:
        """Answer a UE's message: same UE, ``corr_id`` = its seq."""
        rec = self._live(request.ue_id)
        env = reply_to(request, body, seq=self._next_seq(), round=self.round)
        self._send(rec.route, env)
        return env

    def _live(self, ue_id: str) -> UeRecord:
        rec = self.registry.ues.get(ue_id)
        if rec is None or not rec.alive:
            raise ProtocolError(f"UE {ue_id!r} is not registered; live UEs: {', '.join(self.live_ues) or 'none'}")
        return rec

    # --- rounds -----------------------------------------------------------------------------------------

    def start_round(
        self, model_digest: bytes, model_size_bytes: int, deadline_s: float, number: int | None = None
    ) -> list[Event]:
        """Open round ``number`` (default: the next) for every live UE (ROUND_START to each); returns events
        (round_complete if none is live)."""
        state = self.registry.start_round(time.monotonic(), deadline_s, number)
        body = RoundStart(model_digest, model_size_bytes, deadline_s)
        for ue_id in sorted(state.participants):
            self.send(ue_id, body)
        return self.registry.check_complete()

    def end_round(self, status: Literal["complete", "deadline", "aborted"] = "complete") -> RoundState:
        """Close the round; ROUND_END to its live participants. Later round-scoped messages are stale."""
        state = self.registry.end_round()
        body = RoundEnd(status, len(state.done))
        for ue_id in sorted(state.participants - state.dropped):
            if self.registry.ues[ue_id].alive:
                self.send(ue_id, body)
        return state

    @property
    def round(self) -> int:
        """The current (or last) round number; 0 before the first."""
        return self.registry.round

    @property
    def round_state(self) -> RoundState | None:
        """Participants, done, dropped and deadline of the current (or last) round."""
        return self.registry.current

    @property
    def live_ues(self) -> list[str]:
        """UE ids with a live registration, sorted."""
        return self.registry.live()

    @property
    def auth_counts(self) -> Counter[str]:
        """ZAP decisions ("allowed", "denied"); empty in plain-text mode."""
        return self._authenticator.counts if self._authenticator is not None else Counter()

    # --- lifetime ---------------------------------------------------------------------------------------

    def close(self, *, say_bye: bool = True) -> None:
        """Tell live UEs (BYE, unless simulating a crash), then close the sockets, ZAP thread and context."""
        if self._closed:
            return
        self._closed = True
        self.reject_log.flush()
        linger_ms = 0
        if say_bye and hasattr(self, "endpoint"):
            for ue_id in self.live_ues:
                self.send(ue_id, Bye("server shutting down"))
            linger_ms = int(self.config.heartbeat_interval_s * 1e3)  # let the BYEs leave, but never hang
        if self._monitor is not None:
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
        self._sock.close(linger=linger_ms)
        if self._authenticator is not None:
            self._authenticator.stop()
        self._context.term()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
