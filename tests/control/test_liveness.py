"""Liveness: UEs that die, hang or lose their BS are noticed within the heartbeat budget and rejoin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from control_helpers import HEARTBEAT_S, KeyRing, client_config, kinds, poll_until

from testbed.control.server import ControlServer

AGENT = Path(__file__).with_name("ue_agent.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
DIGEST = bytes(range(32))
SLACK_S = 2 * HEARTBEAT_S  # scheduling noise on a loaded 2-core machine
LIVENESS_BOUND_S = 3 * HEARTBEAT_S + SLACK_S


def start_agent(keys: KeyRing, server: ControlServer, ue_id: str) -> subprocess.Popen[bytes]:
    secret = keys.allowed_dir / f"{ue_id}.key_secret"
    argv = [sys.executable, str(AGENT), server.endpoint, ue_id, str(secret), str(keys.bs_public), str(HEARTBEAT_S)]
    # The agent runs as a script, so its sys.path starts at tests/control: point it at this checkout's testbed,
    # not whatever copy happens to be installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)


def stop_agent(proc: subprocess.Popen[bytes]) -> None:
    """Always leave no process behind, even a stopped one."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait(timeout=10)


def wait_gone(server: ControlServer, ue_id: str, since_s: float) -> float:
    """Drive the server until ``ue_id`` is declared gone; return how long after ``since_s`` that happened."""
    poll_until(server, lambda ev: ue_id in kinds(ev, "gone"))
    took_s = time.monotonic() - since_s
    print(f"{ue_id} declared gone {took_s:.3f} s after it stopped (bound {LIVENESS_BOUND_S:.3f} s)")
    return took_s


def test_killed_ue_is_gone_within_three_intervals_and_rejoins_for_the_next_round(make_server, keys):
    server = make_server()
    procs = [start_agent(keys, server, ue) for ue in ("ue-1", "ue-2")]
    try:
        poll_until(server, lambda ev: set(kinds(ev, "joined")) >= {"ue-1", "ue-2"})
        server.start_round(DIGEST, 1000, deadline_s=30.0)
        killed_at = time.monotonic()
        procs[1].kill()  # mid-round: ue-1 may or may not have sent UPLINK_DONE yet
        procs[1].wait(timeout=10)
        assert wait_gone(server, "ue-2", killed_at) <= LIVENESS_BOUND_S
        poll_until(server, lambda ev: "round_complete" in [e.kind for e in ev] or server.round_state.reported)
        first = server.round_state
        assert first.done == {"ue-1"} and first.dropped == {"ue-2"}

        procs[1] = start_agent(keys, server, "ue-2")  # restart: a new process, a new session
        poll_until(server, lambda ev: "ue-2" in kinds(ev, "joined"))
        assert server.live_ues == ["ue-1", "ue-2"]
        assert server.registry.ues["ue-2"].registered_round == 1  # not eligible for round 1 any more
        server.end_round()

        server.start_round(DIGEST, 1000, deadline_s=30.0)
        events = poll_until(server, lambda ev: "round_complete" in [e.kind for e in ev])
        assert set(kinds(events, "message")) == {"ue-1", "ue-2"}
        assert server.round_state.round == 2 and server.round_state.done == {"ue-1", "ue-2"}
    finally:
        for proc in procs:
            stop_agent(proc)


def test_stopped_ue_is_gone_within_three_intervals_and_returns_after_sigcont(make_server, keys):
    server = make_server()
    proc = start_agent(keys, server, "ue-3")
    try:
        poll_until(server, lambda ev: "ue-3" in kinds(ev, "joined"))
        stopped_at = time.monotonic()
        os.kill(proc.pid, signal.SIGSTOP)  # hung: libzmq's own pings would still be answered, ours are not
        assert wait_gone(server, "ue-3", stopped_at) <= LIVENESS_BOUND_S
        os.kill(proc.pid, signal.SIGCONT)
        poll_until(server, lambda ev: "ue-3" in kinds(ev, "joined"))
        assert server.live_ues == ["ue-3"]
    finally:
        stop_agent(proc)


@pytest.mark.parametrize("graceful", [True, False], ids=["bye", "crash"])
def test_ues_reregister_within_five_seconds_of_a_bs_restart(make_server, keys, start_client, graceful):
    first = make_server()
    endpoint = first.endpoint
    for ue in ("ue-1", "ue-2"):
        start_client(client_config(ue, endpoint), keys.client(ue))
    poll_until(first, lambda ev: set(kinds(ev, "joined")) == {"ue-1", "ue-2"})

    first.close(say_bye=graceful)
    restarted_at = time.monotonic()
    second = make_server(bind_endpoint=endpoint)  # same address, fresh process state
    poll_until(second, lambda ev: set(kinds(ev, "joined")) == {"ue-1", "ue-2"})
    assert time.monotonic() - restarted_at <= 5.0
    assert second.session_id != first.session_id and second.round == 0
