"""Registry rules without a network: sessions, replays, stale rounds, eligibility, expiry, round completion."""

from __future__ import annotations

import pytest

from testbed.control.protocol import Bye, Heartbeat, Hello, Rejected, UplinkDone, make_envelope
from testbed.control.registry import Registry
from testbed.errors import ProtocolError

ROUTE = b"r1"
DONE = UplinkDone(1, 1, 10, 0.0, 0.0)


def msg(body, ue="ue-1", seq=1, round=0):
    return make_envelope(body, ue_id=ue, seq=seq, round=round)


def reason(call) -> str:
    with pytest.raises(Rejected) as info:
        call()
    return info.value.reason


def test_hello_registers_and_a_retried_hello_changes_nothing():
    reg = Registry()
    assert [e.kind for e in reg.hello(msg(Hello(1)), ROUTE, 0.0)] == ["joined"]
    assert reg.hello(msg(Hello(1), seq=2), b"r2", 0.1) == []
    assert reg.ues["ue-1"].route == b"r2" and reg.ues["ue-1"].last_seq == 2
    assert reason(lambda: reg.hello(msg(Hello(1), seq=2), ROUTE, 0.2)) == "replayed_seq"


def test_sequence_numbers_must_increase_and_need_a_registration():
    reg = Registry()
    assert reason(lambda: reg.accept(msg(Heartbeat(), seq=5), ROUTE, 0.0)) == "not_registered"
    reg.hello(msg(Hello(1), seq=3), ROUTE, 0.0)
    reg.accept(msg(Heartbeat(), seq=4), ROUTE, 0.0)
    assert reason(lambda: reg.accept(msg(Heartbeat(), seq=4), ROUTE, 0.0)) == "replayed_seq"
    assert reason(lambda: reg.accept(msg(Heartbeat(), seq=1), ROUTE, 0.0)) == "replayed_seq"
    reg.accept(msg(Heartbeat(), seq=90), ROUTE, 0.0)  # gaps are fine (messages lost in a reconnect)


def test_new_session_resets_the_window_but_an_old_session_cannot_come_back():
    reg = Registry()
    reg.hello(msg(Hello(1), seq=50), ROUTE, 0.0)
    kinds = [e.kind for e in reg.hello(msg(Hello(2), seq=1), ROUTE, 0.1)]  # the UE process restarted
    assert kinds == ["gone", "joined"]
    assert reason(lambda: reg.hello(msg(Hello(1), seq=51), ROUTE, 0.2)) == "replayed_seq"


def test_round_scoped_messages_need_the_current_round_and_participation():
    reg = Registry()
    reg.hello(msg(Hello(1), ue="ue-1"), ROUTE, 0.0)
    assert reason(lambda: reg.accept(msg(DONE, seq=2, round=0), ROUTE, 0.0)) == "stale_round"  # no round yet
    reg.start_round(0.0, deadline_s=10.0)
    reg.hello(msg(Hello(2), ue="ue-2"), ROUTE, 0.0)  # joins during round 1
    assert reason(lambda: reg.accept(msg(DONE, seq=3, round=2), ROUTE, 0.0)) == "stale_round"
    assert reason(lambda: reg.accept(msg(DONE, ue="ue-2", seq=2, round=1), ROUTE, 0.0)) == "not_participant"
    env = msg(DONE, seq=4, round=1)
    reg.accept(env, ROUTE, 0.0)
    assert [e.kind for e in reg.uplink_done(env)] == ["message", "round_complete"]
    assert reg.uplink_done(msg(DONE, seq=5, round=1)) == []  # idempotent
    reg.end_round()
    assert reason(lambda: reg.accept(msg(DONE, seq=6, round=1), ROUTE, 0.0)) == "stale_round"
    assert reg.start_round(1.0, deadline_s=10.0).participants == {"ue-1", "ue-2"}  # eligible now


def test_silent_ue_expires_drops_out_of_the_round_and_rejoins_only_for_the_next():
    reg = Registry()
    for i, ue in enumerate(("ue-1", "ue-2")):
        reg.hello(msg(Hello(i + 1), ue=ue), ROUTE, 0.0)
    reg.start_round(0.0, deadline_s=10.0)
    reg.accept(msg(Heartbeat(), ue="ue-1", seq=2), ROUTE, 0.25)
    reg.accept(env := msg(DONE, ue="ue-1", seq=3, round=1), ROUTE, 0.25)
    assert [e.kind for e in reg.uplink_done(env)] == ["message"]  # ue-2 still outstanding
    assert reg.expire(0.29, timeout_s=0.3) == []
    events = reg.expire(0.31, timeout_s=0.3)
    assert [(e.kind, e.ue_id) for e in events] == [("gone", "ue-2"), ("round_complete", "")]
    reg.hello(msg(Hello(2), ue="ue-2", seq=9), ROUTE, 0.4)  # back, same session
    assert reg.ues["ue-2"].alive and reg.ues["ue-2"].registered_round == 1
    assert reason(lambda: reg.accept(msg(DONE, ue="ue-2", seq=10, round=1), ROUTE, 0.4)) == "not_participant"


def test_deadline_is_reported_once_and_bye_leaves():
    reg = Registry()
    reg.hello(msg(Hello(1)), ROUTE, 0.0)
    reg.start_round(0.0, deadline_s=1.0)
    assert reg.next_timer_s(timeout_s=5.0) == 1.0
    assert [e.kind for e in reg.expire(1.0, timeout_s=5.0)] == ["round_deadline"]
    assert reg.expire(1.1, timeout_s=5.0) == []
    reg.accept(msg(Bye(), seq=2), ROUTE, 1.2)
    assert [e.kind for e in reg.leave("ue-1", "left")] == ["left"]
    assert reg.live() == []


def test_a_round_cannot_start_twice_or_end_unopened():
    reg = Registry()
    with pytest.raises(ProtocolError, match="start_round"):
        reg.end_round()
    reg.start_round(0.0, 1.0)
    with pytest.raises(ProtocolError, match="end_round"):
        reg.start_round(0.0, 1.0)
