"""The UE client against a hand-driven fake BS: what it accepts, what it refuses, how it retries."""

from __future__ import annotations

import time

import pytest
import zmq
from control_helpers import WAIT_S, KeyRing

from testbed.control.client import ControlClient
from testbed.control.config import ClientConfig, Event, ServerConfig
from testbed.control.protocol import (
    Envelope,
    Error,
    Heartbeat,
    Hello,
    RoundEnd,
    RoundStart,
    Welcome,
    decode,
    encode,
    make_envelope,
)
from testbed.errors import ConfigError

HB_S = 0.1
DIGEST = bytes(32)


class FakeBs:
    """A bare CURVE ROUTER (no allow-list: libzmq admits any key without a ZAP handler) driven by the test."""

    def __init__(self, keys: KeyRing) -> None:
        server = keys.server()
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.curve_server = True
        self.sock.curve_secretkey, self.sock.curve_publickey = server.secret_key, server.public_key
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.seq = 0
        self.route = b""

    def recv(self, client: ControlClient, *, timeout_s: float = WAIT_S) -> tuple[Envelope, list[Event]]:
        """Drive the client until a message arrives here; return it and the client's events meanwhile."""
        events: list[Event] = []
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            events += client.poll(0.01)
            if self.sock.poll(0):
                self.route, data = self.sock.recv_multipart()
                return decode(data), events
        raise AssertionError(f"nothing from the client in {timeout_s} s")

    def send(self, body: object, *, ue_id: str = "ue-1", round: int = 0, corr_id: int = 0, seq: int | None = None):
        self.seq = self.seq + 1 if seq is None else seq
        env = make_envelope(body, ue_id=ue_id, seq=self.seq, round=round, corr_id=corr_id)  # type: ignore[arg-type]
        self.sock.send_multipart([self.route, encode(env)])

    def close(self) -> None:
        self.sock.close()
        self.context.term()


@pytest.fixture
def fake_bs(keys):
    bs = FakeBs(keys)
    yield bs
    bs.close()


@pytest.fixture
def client(fake_bs, keys):
    config = ClientConfig("ue-1", fake_bs.endpoint, heartbeat_interval_s=HB_S, retry_initial_s=0.1, retry_max_s=0.8,
                          reconnect_ivl_s=0.1)  # fmt: skip
    c = ControlClient(config, keys.client("ue-1"))
    yield c
    c.close(say_bye=False)


def drain(client: ControlClient, seconds: float = 0.2) -> list[Event]:
    events: list[Event] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        events += client.poll(0.01)
    return events


def register(fake_bs: FakeBs, client: ControlClient) -> None:
    hello, _ = fake_bs.recv(client)
    assert isinstance(hello.body, Hello)
    fake_bs.send(Welcome(hello.body.session_id, 77, HB_S, 0), corr_id=hello.seq)
    assert [e.kind for e in drain(client)] == ["registered"]


def test_welcome_must_answer_our_latest_hello(fake_bs, client):
    hello, _ = fake_bs.recv(client)
    fake_bs.send(Welcome(hello.body.session_id, 77, HB_S, 0), corr_id=hello.seq + 100)
    fake_bs.send(Welcome(hello.body.session_id + 1, 77, HB_S, 0), corr_id=hello.seq)
    drain(client, 0.05)
    assert client.state == "connecting" and client.rejections["unexpected"] == 2
    fake_bs.send(Welcome(hello.body.session_id, 77, HB_S, 4), corr_id=hello.seq)
    assert [e.kind for e in drain(client)] == ["registered"]
    assert client.round == 4 and client.server_session_id == 77


def test_client_refuses_misaddressed_replayed_and_stale_messages(fake_bs, client):
    register(fake_bs, client)
    fake_bs.send(RoundStart(DIGEST, 1, 5.0), ue_id="ue-2", round=1)
    fake_bs.send(RoundStart(DIGEST, 1, 5.0), round=1)
    events = drain(client)
    assert [e.message.type for e in events] == ["ROUND_START"] and client.round == 1
    fake_bs.send(RoundStart(DIGEST, 1, 5.0), round=2, seq=fake_bs.seq)  # replayed seq
    fake_bs.send(RoundStart(DIGEST, 1, 5.0), round=1)  # round 1 again: stale
    fake_bs.send(RoundEnd("complete", 1), round=0)  # a round that is not the current one
    assert drain(client) == []
    assert dict(client.rejections) == {"wrong_ue_id": 1, "replayed_seq": 1, "stale_round": 2}


def test_not_registered_error_triggers_a_new_hello_on_the_same_socket(fake_bs, client):
    register(fake_bs, client)
    fake_bs.send(Error("not_registered", "BS restarted"))
    msg, _ = fake_bs.recv(client)
    while isinstance(msg.body, Heartbeat):
        msg, _ = fake_bs.recv(client)
    assert isinstance(msg.body, Hello) and client.state == "connecting"
    assert client.transport["connects"] == 1


def test_silent_bs_is_declared_gone_and_the_client_reconnects_on_a_fresh_socket(fake_bs, client):
    register(fake_bs, client)
    first_route = fake_bs.route
    msg, events = fake_bs.recv(client)
    while not isinstance(msg.body, Hello):  # heartbeats go unanswered ...
        msg, more = fake_bs.recv(client)
        events += more
    assert [e.kind for e in events] == ["gone"]  # ... so after 3 intervals the BS is gone
    assert client.transport["connects"] == 2 and fake_bs.route != first_route


def test_unanswered_hello_is_retried_with_backoff(fake_bs, client):
    arrivals = 0
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        client.poll(0.01)
        while fake_bs.sock.poll(0):
            fake_bs.sock.recv_multipart()
            arrivals += 1
    # HELLOs at 0, 0.1, 0.3, 0.7, 1.5 s (the wait doubles from 0.1 s, capped at 0.8 s): 5 in 2 s, where a
    # fixed 0.1 s retry would make 20; each retry is a fresh socket
    assert 3 <= arrivals <= 6
    assert arrivals <= client.transport["connects"] <= arrivals + 1


@pytest.mark.parametrize(
    "kwargs",
    [{"ue_id": "UE 1"}, {"heartbeat_interval_s": 0.0}, {"heartbeat_interval_s": float("nan")},
     {"retry_initial_s": 2.0, "retry_max_s": 1.0}, {"liveness_intervals": 1}],
)  # fmt: skip
def test_client_config_refuses_bad_values(kwargs):
    with pytest.raises(ConfigError):
        ClientConfig(**{"ue_id": "ue-1", "server_endpoint": "tcp://127.0.0.1:1", **kwargs})


def test_server_config_refuses_bad_values():
    with pytest.raises(ConfigError, match="heartbeat_interval_s"):
        ServerConfig(heartbeat_interval_s=-1.0)
    with pytest.raises(ConfigError, match="max_message_bytes"):
        ServerConfig(max_message_bytes=10**9)
