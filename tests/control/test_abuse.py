"""Hostile input from an authenticated UE: garbage, oversize, out-of-bounds, replays and stale rounds."""

from __future__ import annotations

import logging

import msgspec
import numpy as np
import zmq
from control_helpers import poll_until

from testbed.control.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Heartbeat,
    Hello,
    UplinkDone,
    Welcome,
    encode,
    make_envelope,
)

NUM_BAD = 10_000
DIGEST = bytes(32)
SLOW_HEARTBEAT_S = 5.0  # the raw socket sends no heartbeats; keep liveness out of these tests


def header(**overrides: object) -> dict[str, object]:
    fields = {"version": PROTOCOL_VERSION, "ue_id": "ue-1", "seq": 10**9, "corr_id": 0, "round": 0, "timestamp_s": 1.0}
    return fields | overrides


def bad_frames(rng: np.random.Generator) -> list[bytes]:
    """NUM_BAD frames, each refused for a different reason: garbage, oversize, bounds, type, version, direction."""
    pack = msgspec.msgpack.encode
    makers = [
        lambda i: rng.bytes(int(rng.integers(0, 200))),  # random bytes
        lambda i: pack([1, 2, 3]),  # msgpack, wrong shape
        lambda i: pack(header(version=PROTOCOL_VERSION + 1, body={"type": "HEARTBEAT"})),
        lambda i: pack(header(body={"type": "SELF_DESTRUCT"})),
        lambda i: pack(header(body={"type": "HEARTBEAT", "pad": "x" * 4000})),  # oversized for a HEARTBEAT
        lambda i: pack(header(seq=-1, body={"type": "HEARTBEAT"})),
        lambda i: pack(header(ue_id="UE ONE", body={"type": "HEARTBEAT"})),
        lambda i: pack(
            header(
                body={
                    "type": "UPLINK_DONE",
                    "object_id": 1,
                    "num_frames": 1,
                    "payload_bytes": 1,
                    "compute_time_s": float("nan"),
                    "energy_used_j": 0.0,
                }
            )
        ),
        lambda i: pack(header(body={"type": "NACK", "nack": {"object_id": 1, "frame_count": 9, "missing": b"\x00"}})),
        lambda i: pack(header(body={"type": "HEARTBEAT", "extra": 1})),
        lambda i: encode(make_envelope(Welcome(1, 2, 1.0, 0), ue_id="ue-1", seq=10**9, round=0)),  # BS-only
    ]
    return [makers[i % len(makers)](i) for i in range(NUM_BAD)]


def test_ten_thousand_bad_messages_are_all_refused_and_the_bs_still_answers(make_server, raw_ue, rng):
    server = make_server(heartbeat_interval_s=SLOW_HEARTBEAT_S)
    raw = raw_ue(server.endpoint, "ue-1")
    raw.send(Hello(1), ue_id="ue-1", seq=1)
    assert raw.recv(server).type == "WELCOME"
    for frame in bad_frames(rng):
        raw.sock.send(frame)
    events = poll_until(server, lambda ev: sum(server.rejections.values()) >= NUM_BAD)
    assert sum(server.rejections.values()) == NUM_BAD
    assert events == []  # none reached the application
    assert set(server.rejections) >= {
        "malformed",
        "bad_version",
        "unknown_type",
        "out_of_bounds",
        "oversized",
        "wrong_direction",
    }

    raw.sock.send_multipart([b"a", b"b"])  # two frames where one is expected
    raw.sock.send(b"\x00" * (MAX_MESSAGE_BYTES + 1))  # over ZMQ_MAXMSGSIZE: libzmq drops the connection
    poll_until(server, lambda ev: server.rejections["bad_frames"] == 1 and server.transport["DISCONNECTED"] >= 1)

    for seq in range(2, 200):  # the DEALER reconnects by itself; retry until the heartbeat gets through
        raw.send(Heartbeat(), ue_id="ue-1", seq=seq)
        try:
            reply = raw.recv(server, timeout_s=0.5)
        except AssertionError:
            continue
        assert reply.type == "HEARTBEAT" and reply.corr_id == seq
        break
    else:
        raise AssertionError("the BS never answered a valid heartbeat after the flood")
    assert server.live_ues == ["ue-1"]


def test_replayed_seq_and_stale_round_are_rejected_and_counted(make_server, raw_ue):
    server = make_server(heartbeat_interval_s=SLOW_HEARTBEAT_S)
    raw = raw_ue(server.endpoint, "ue-1")
    raw.send(Hello(5), ue_id="ue-1", seq=1)
    assert raw.recv(server).type == "WELCOME"
    raw.send(Heartbeat(), ue_id="ue-1", seq=2)
    assert raw.recv(server).corr_id == 2
    raw.send(Heartbeat(), ue_id="ue-1", seq=2)  # duplicate
    raw.send(Heartbeat(), ue_id="ue-1", seq=1)  # replay
    poll_until(server, lambda ev: server.rejections["replayed_seq"] == 2)

    server.start_round(DIGEST, 10, deadline_s=60.0)
    assert raw.recv(server).type == "ROUND_START"
    done = UplinkDone(1, 1, 100, 0.0, 0.0)
    raw.send(done, ue_id="ue-1", seq=3, round=1)
    events = poll_until(server, lambda ev: [e.kind for e in ev] == ["message", "round_complete"])
    assert events[0].message.body == done
    server.end_round()
    assert raw.recv(server).type == "ROUND_END"
    server.start_round(DIGEST, 10, deadline_s=60.0)
    assert raw.recv(server).type == "ROUND_START"
    raw.send(done, ue_id="ue-1", seq=4, round=1)  # round 1 is over
    raw.send(done, ue_id="ue-1", seq=5, round=3)  # round 3 has not begun
    poll_until(server, lambda ev: server.rejections["stale_round"] == 2)
    assert server.round_state.done == set()

    raw.send(Hello(4), ue_id="ue-1", seq=6)  # new session 4 ...
    assert raw.recv(server).type == "WELCOME"
    raw.send(Hello(5), ue_id="ue-1", seq=1)  # ... then the old session 5 again: a replay
    poll_until(server, lambda ev: server.rejections["replayed_seq"] == 3)


def test_unroutable_and_full_queues_cost_a_count_not_a_crash(make_server, raw_ue):
    server = make_server(heartbeat_interval_s=SLOW_HEARTBEAT_S)
    raw = raw_ue(server.endpoint, "ue-1")
    raw.send(Hello(9), ue_id="ue-1", seq=1)
    assert raw.recv(server).type == "WELCOME"
    raw.sock.close(linger=0)
    raw.sock = raw.context.socket(zmq.DEALER)  # so the fixture can still close it
    poll_until(server, lambda ev: server.transport["DISCONNECTED"] >= 1)

    def send_once_more(_events: list) -> bool:
        # The monitor can report DISCONNECTED a moment before the ROUTER drops the route, so retry.
        server.send("ue-1", Heartbeat())
        return server.transport["send_unroutable"] >= 1

    poll_until(server, send_once_more)  # ROUTER_MANDATORY reports the vanished route; the server stays up
    assert server.transport["send_unroutable"] >= 1


def test_refused_messages_are_logged_rate_limited_with_a_count(make_server, raw_ue, caplog):
    server = make_server(heartbeat_interval_s=SLOW_HEARTBEAT_S, reject_log_interval_s=3600.0)
    raw = raw_ue(server.endpoint)
    # A HEARTBEAT with a field nested 5,000 arrays deep: the decoder's RecursionError logged a WARNING each
    heartbeat = msgspec.msgpack.encode(header(body={"type": "HEARTBEAT"}))
    tail = b"\x81\xa4type\xa9HEARTBEAT"
    assert heartbeat.endswith(tail)
    deep = heartbeat[: -len(tail)] + b"\x82\xa4type\xa9HEARTBEAT\xa1x" + b"\x91" * 5000 + b"\xc0"
    with caplog.at_level(logging.WARNING, logger="testbed.control"):
        for _ in range(2000):
            raw.sock.send(deep)
        poll_until(server, lambda ev: server.rejections["malformed"] >= 2000)
        server.close(say_bye=False)  # reports what is pending
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("refused 1 control message(s) (malformed 1)")
    assert lines[1].startswith("refused 1999 control message(s) (malformed 1999)")


def test_reject_log_sums_per_interval():
    from testbed.control.server import RejectLog

    now = [0.0]
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("testbed.control.server").addHandler(handler)
    try:
        rl = RejectLog(10.0, clock=lambda: now[0])
        for t in range(25):  # one refusal per second for 25 s: a line at 0, 10 and 20 s
            now[0] = float(t)
            rl.note("malformed" if t % 2 else "replayed_seq", f"detail {t}")
    finally:
        logging.getLogger("testbed.control.server").removeHandler(handler)
    assert [r.getMessage().split(";")[0] for r in records] == [
        "refused 1 control message(s) (replayed_seq 1)",
        "refused 10 control message(s) (malformed 5, replayed_seq 5)",
        "refused 10 control message(s) (malformed 5, replayed_seq 5)",
    ]
