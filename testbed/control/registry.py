"""The BS's view of its UEs and of the current round: sessions, sequence numbers, liveness, participation.

No sockets here: the server feeds in decoded envelopes with the time and the route they came by, and gets
back a decision (accept, or a rejection reason) plus the events to report. Keeping it pure lets the rules
(replays, stale rounds, eligibility from the next round) be tested without a network.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from testbed.control.config import Event
from testbed.control.protocol import (
    ROUND_SCOPED_FROM_UE,
    CapabilityReport,
    ChannelReport,
    Envelope,
    Hello,
    Rejected,
    UplinkDone,
)
from testbed.errors import ProtocolError

#: Past session ids remembered per UE, so a replayed HELLO of an old session cannot reset the seq window.
SESSION_MEMORY = 16


@dataclass
class UeRecord:
    """One UE as the BS knows it."""

    ue_id: str
    session_id: int
    route: bytes  # ROUTER routing id of its latest accepted message
    last_seq: int
    last_seen_s: float  # monotonic clock
    registered_round: int  # server round at (re-)registration: eligible for rounds after it
    alive: bool = True
    capability: CapabilityReport | None = None
    channel: ChannelReport | None = None
    past_sessions: deque[int] = field(default_factory=lambda: deque(maxlen=SESSION_MEMORY))


@dataclass
class RoundState:
    """The round in progress (or the last one, once ``ended``)."""

    round: int
    participants: frozenset[str]
    deadline_at_s: float  # monotonic
    done: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)  # participants declared gone or left during the round
    ended: bool = False
    reported: bool = False  # round_complete or round_deadline already reported

    @property
    def outstanding(self) -> frozenset[str]:
        """Participants still expected to send UPLINK_DONE."""
        return self.participants - self.done - self.dropped


class Registry:
    """UE sessions and the round counter; every rule about who may say what, and when."""

    def __init__(self) -> None:
        self.ues: dict[str, UeRecord] = {}
        self.round = 0
        self.current: RoundState | None = None

    def live(self) -> list[str]:
        """UE ids with a live registration, sorted."""
        return sorted(u for u, rec in self.ues.items() if rec.alive)

    def hello(self, env: Envelope, route: bytes, now_s: float) -> list[Event]:
        """Register, re-register or refresh a UE from its HELLO; raise :class:`Rejected` for replays."""
        if not isinstance(env.body, Hello):
            raise ProtocolError(f"hello() needs a HELLO, got {env.type}")
        rec = self.ues.get(env.ue_id)
        session = env.body.session_id
        if rec is not None and rec.session_id == session:
            self._accept_seq(rec, env, route, now_s)
            if rec.alive:
                return []  # a retried HELLO: answer again, change nothing
            rec.alive, rec.registered_round = True, self.round
            return [Event("joined", env.ue_id, self.round)]
        if rec is not None and session in rec.past_sessions:
            raise Rejected("replayed_seq", f"HELLO of {env.ue_id}'s earlier session {session}")
        events: list[Event] = []
        past: deque[int] = deque(maxlen=SESSION_MEMORY)
        if rec is not None:  # the UE process restarted: its old session ends here
            if rec.alive:
                events += self.leave(rec.ue_id, "gone")
            past = rec.past_sessions
            past.append(rec.session_id)
        self.ues[env.ue_id] = UeRecord(env.ue_id, session, route, env.seq, now_s, self.round, past_sessions=past)
        return [*events, Event("joined", env.ue_id, self.round)]

    def accept(self, env: Envelope, route: bytes, now_s: float) -> UeRecord:
        """Check a non-HELLO message from a UE: live registration, fresh seq, current round if round-scoped."""
        rec = self.ues.get(env.ue_id)
        if rec is None or not rec.alive:
            raise Rejected("not_registered", f"{env.ue_id} has no live registration; send HELLO first")
        self._accept_seq(rec, env, route, now_s)
        if type(env.body) in ROUND_SCOPED_FROM_UE:
            cur = self.current
            if cur is None or cur.ended or env.round != cur.round:
                now_round = "none" if cur is None or cur.ended else str(cur.round)
                raise Rejected("stale_round", f"{env.type} for round {env.round}; round in progress: {now_round}")
            if env.ue_id not in cur.outstanding | cur.done:
                raise Rejected("not_participant", f"{env.ue_id} (re-)joined after round {cur.round} started")
        return rec

    def uplink_done(self, env: Envelope) -> list[Event]:
        """Record UPLINK_DONE (idempotent: a second one for the round changes nothing and reports nothing)."""
        if not isinstance(env.body, UplinkDone) or self.current is None:
            raise ProtocolError("uplink_done() needs an accepted UPLINK_DONE during a round")
        if env.ue_id in self.current.done:
            return []
        self.current.done.add(env.ue_id)
        return [Event("message", env.ue_id, env.round, env), *self.check_complete()]

    def leave(self, ue_id: str, kind: Literal["gone", "left"]) -> list[Event]:
        """Forget a UE's registration (BYE: "left"; liveness: "gone")."""
        rec = self.ues[ue_id]
        self._drop(rec)
        return [Event(kind, ue_id, self.round), *self.check_complete()]

    def expire(self, now_s: float, timeout_s: float) -> list[Event]:
        """Declare gone every live UE silent for more than ``timeout_s``; report the round's deadline."""
        events: list[Event] = []
        for rec in list(self.ues.values()):
            if rec.alive and now_s - rec.last_seen_s > timeout_s:
                events += self.leave(rec.ue_id, "gone")
        cur = self.current
        if cur is not None and not cur.ended and not cur.reported and now_s >= cur.deadline_at_s:
            cur.reported = True
            events.append(Event("round_deadline", "", cur.round))
        return events

    def next_timer_s(self, timeout_s: float) -> float:
        """Monotonic time of the next expiry or round deadline (inf if none), so the loop wakes just then."""
        times = [rec.last_seen_s + timeout_s for rec in self.ues.values() if rec.alive]
        cur = self.current
        if cur is not None and not cur.ended and not cur.reported:
            times.append(cur.deadline_at_s)
        return min(times, default=float("inf"))

    def start_round(self, now_s: float, deadline_s: float, number: int | None = None) -> RoundState:
        """Open round ``number`` (default: the next) with every live UE as participant; a BS that resumes its
        run names the round it continues with (never one at or before the last)."""
        if self.current is not None and not self.current.ended:
            raise ProtocolError(f"round {self.current.round} is still open; call end_round() first")
        number = self.round + 1 if number is None else number
        if number <= self.round:
            raise ProtocolError(f"round {number} is not after round {self.round}")
        self.round = number
        self.current = RoundState(self.round, frozenset(self.live()), now_s + deadline_s)
        return self.current

    def end_round(self) -> RoundState:
        """Close the current round: later UPLINK_DONE or NACK for it are stale."""
        if self.current is None or self.current.ended:
            raise ProtocolError("no round is open; call start_round() first")
        self.current.ended = True
        return self.current

    def _accept_seq(self, rec: UeRecord, env: Envelope, route: bytes, now_s: float) -> None:
        if env.seq <= rec.last_seq:
            raise Rejected("replayed_seq", f"{env.ue_id} seq {env.seq} <= last accepted {rec.last_seq}")
        rec.last_seq, rec.last_seen_s, rec.route = env.seq, now_s, route

    def _drop(self, rec: UeRecord) -> None:
        rec.alive = False
        if self.current is not None and not self.current.ended and rec.ue_id in self.current.participants:
            self.current.dropped.add(rec.ue_id)

    def check_complete(self) -> list[Event]:
        """Report round_complete once, when no participant is outstanding."""
        cur = self.current
        if cur is None or cur.ended or cur.reported or cur.outstanding:
            return []
        cur.reported = True
        return [Event("round_complete", "", cur.round)]
