"""Typed settings of the control-plane server and client, and the events their loops report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from testbed.control.protocol import MAX_MESSAGE_BYTES, UE_ID_PATTERN, UE_ID_RE, Envelope
from testbed.errors import ConfigError

#: A peer silent for this many heartbeat intervals is declared gone (the Paranoid Pirate rule, zguide ch. 4).
LIVENESS_INTERVALS = 3


def _check_interval(name: str, value_s: float, low_s: float = 0.01, high_s: float = 3600.0) -> None:
    if not (math.isfinite(value_s) and low_s <= value_s <= high_s):
        raise ConfigError(f"{name}={value_s!r} must be a number of seconds in [{low_s}, {high_s}]")


@dataclass(frozen=True)
class ServerConfig:
    """BS side. ``bind_endpoint`` with port ``*`` binds an ephemeral port (see ``ControlServer.endpoint``)."""

    bind_endpoint: str = "tcp://127.0.0.1:*"
    heartbeat_interval_s: float = 1.0
    liveness_intervals: int = LIVENESS_INTERVALS
    max_message_bytes: int = MAX_MESSAGE_BYTES
    queue_limit_messages: int = 1000  # ZMQ_SNDHWM / ZMQ_RCVHWM
    max_batch_messages: int = 1000  # messages handled per loop pass before timers are checked again
    reject_log_interval_s: float = 10.0  # at most one WARNING about refused messages per interval

    def __post_init__(self) -> None:
        _check_interval("heartbeat_interval_s", self.heartbeat_interval_s, high_s=60.0)
        _check_interval("reject_log_interval_s", self.reject_log_interval_s, high_s=86400.0)
        if not 2 <= self.liveness_intervals <= 100:
            raise ConfigError(f"liveness_intervals={self.liveness_intervals} must be in [2, 100]")
        if not 1024 <= self.max_message_bytes <= MAX_MESSAGE_BYTES:
            raise ConfigError(f"max_message_bytes={self.max_message_bytes} must be in [1024, {MAX_MESSAGE_BYTES}]")


@dataclass(frozen=True)
class ClientConfig:
    """UE side. The BS's heartbeat interval (in WELCOME) replaces ``heartbeat_interval_s`` once registered.

    Retries: an unanswered HELLO is resent on a fresh socket after ``retry_initial_s``, doubling up to
    ``retry_max_s``; within one socket libzmq reconnects a dropped TCP connection every ``reconnect_ivl_s``.
    Both bound how often a refused client knocks on the BS.
    """

    ue_id: str
    server_endpoint: str
    heartbeat_interval_s: float = 1.0
    liveness_intervals: int = LIVENESS_INTERVALS
    retry_initial_s: float = 0.5
    retry_max_s: float = 8.0
    reconnect_ivl_s: float = 1.0
    max_message_bytes: int = MAX_MESSAGE_BYTES
    queue_limit_messages: int = 1000
    software_version: str = ""

    def __post_init__(self) -> None:
        if not UE_ID_RE.match(self.ue_id):
            raise ConfigError(f"ue_id={self.ue_id!r} must match {UE_ID_PATTERN} (lower-case, 1-32 chars)")
        _check_interval("heartbeat_interval_s", self.heartbeat_interval_s, high_s=60.0)
        _check_interval("retry_initial_s", self.retry_initial_s)
        _check_interval("retry_max_s", self.retry_max_s, low_s=self.retry_initial_s)
        _check_interval("reconnect_ivl_s", self.reconnect_ivl_s)
        if not 2 <= self.liveness_intervals <= 100:
            raise ConfigError(f"liveness_intervals={self.liveness_intervals} must be in [2, 100]")
        if not 1024 <= self.max_message_bytes <= MAX_MESSAGE_BYTES:
            raise ConfigError(f"max_message_bytes={self.max_message_bytes} must be in [1024, {MAX_MESSAGE_BYTES}]")


EventKind = Literal[
    "joined",  # server: a UE registered or re-registered (eligible from the next round)
    "gone",  # server: a UE missed liveness_intervals heartbeats / client: the BS did
    "left",  # server: a UE said BYE
    "registered",  # client: WELCOME received
    "message",  # an application message (``message`` holds it)
    "round_complete",  # server: every live participant of the round sent UPLINK_DONE
    "round_deadline",  # server: the round's deadline passed with UPLINK_DONE missing
]


@dataclass(frozen=True)
class Event:
    """One thing a control loop pass observed, for the daemon (or test) driving the loop."""

    kind: EventKind
    ue_id: str
    round: int
    message: Envelope | None = None
