"""Authentication: only allow-listed keys reach the BS application, and refused clients knock slowly."""

from __future__ import annotations

import logging
import time

import pytest
from control_helpers import WAIT_S, client_config, kinds, poll_until

from testbed.control.client import ControlClient
from testbed.control.protocol import Heartbeat, Hello
from testbed.control.security import PLAINTEXT_WARNING, CurveClientKeys, Plaintext
from testbed.errors import ConfigError

OBSERVE_S = 3.0
RECONNECT_IVL_S = 0.5
# Per refused client over OBSERVE_S: libzmq retries every RECONNECT_IVL_S, the application opens a fresh
# socket after 0.5, 1.0, 2.0 s of backoff; an unlimited client on loopback would manage thousands.
MAX_ATTEMPTS = OBSERVE_S / RECONNECT_IVL_S + 4


def test_unknown_key_plaintext_and_wrong_server_key_never_reach_the_application(make_server, keys, start_client):
    intruders = {
        "unknown-key": keys.client("intruder"),
        "plaintext": Plaintext(),
        "wrong-server-key": CurveClientKeys(
            keys.client("ue-1").public_key, keys.client("ue-1").secret_key, keys.client("fake-bs").public_key
        ),
    }
    servers = {name: make_server() for name in intruders}
    for name, security in intruders.items():
        config = client_config(
            "ue-1", servers[name].endpoint, reconnect_ivl_s=RECONNECT_IVL_S, retry_initial_s=0.5, retry_max_s=2.0
        )
        start_client(config, security)

    events = {name: [] for name in intruders}
    end = time.monotonic() + OBSERVE_S
    while time.monotonic() < end:
        for name, server in servers.items():
            events[name] += server.poll(0.02)

    for name, server in servers.items():
        assert events[name] == [], name
        assert server.registry.ues == {}, name
        assert sum(server.rejections.values()) == 0, name  # nothing even reached the decoder
        attempts = server.transport["ACCEPTED"]
        print(f"{name}: {attempts} connection attempts in {OBSERVE_S} s; {dict(server.transport)}")
        assert 1 <= attempts <= MAX_ATTEMPTS, (name, server.transport)
        assert server.transport["HANDSHAKE_SUCCEEDED"] == 0, name
    assert servers["unknown-key"].auth_counts["denied"] >= 1
    assert servers["unknown-key"].auth_counts["allowed"] == 0


def test_allowed_key_registers_and_its_user_id_is_its_ue_id(make_server, keys, start_client):
    server = make_server()
    start_client(client_config("ue-2", server.endpoint), keys.client("ue-2"))
    events = poll_until(server, lambda ev: "ue-2" in kinds(ev, "joined"))
    assert kinds(events, "joined") == ["ue-2"]
    assert server.auth_counts["allowed"] >= 1


def test_claiming_another_ue_id_is_rejected_and_counted(make_server, raw_ue):
    server = make_server()
    raw = raw_ue(server.endpoint, "ue-1")
    raw.send(Hello(42), ue_id="ue-2", seq=1)  # ue-1's key, ue-2's name: told why (it holds a listed key)
    error = raw.recv(server)
    assert error.type == "ERROR" and error.body.code == "wrong_ue_id" and "belongs to 'ue-1'" in error.body.detail
    raw.send(Hello(43), ue_id="ue-1", seq=2)  # then honestly: it gets in as itself only
    assert raw.recv(server).type == "WELCOME"
    raw.send(Heartbeat(), ue_id="ue-2", seq=3)
    poll_until(server, lambda ev: server.rejections["wrong_ue_id"] >= 2, timeout_s=WAIT_S)
    assert server.rejections["wrong_ue_id"] == 2
    assert server.live_ues == ["ue-1"]


def test_plaintext_mode_warns_on_every_start(make_server, caplog):
    with caplog.at_level(logging.WARNING, logger="testbed.control"):
        server = make_server(security=Plaintext())
        client = ControlClient(client_config("ue-1", server.endpoint), Plaintext())
        try:
            poll_until(server, lambda ev: "ue-1" in kinds(ev, "joined"))
        finally:
            client.close(say_bye=False)
    warnings = [r for r in caplog.records if r.getMessage() == PLAINTEXT_WARNING]
    assert len(warnings) == 2  # one for the server, one for the client


def test_a_ue_whose_id_does_not_match_its_key_fails_with_one_clear_error(make_server, keys):
    server = make_server()
    client = ControlClient(client_config("ue-2", server.endpoint), keys.client("ue-1"))  # ue-1's key
    try:
        end = time.monotonic() + WAIT_S
        with pytest.raises(ConfigError, match="the BS refused ue_id 'ue-2': claims 'ue-2', key belongs to 'ue-1'"):
            while time.monotonic() < end:
                server.poll(0.02)
                client.poll(0.02)
    finally:
        client.close(say_bye=False)
    assert server.live_ues == []
