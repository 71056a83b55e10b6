"""Helpers of the control-plane tests: key ring, loop drivers, a client thread and a raw (hostile) UE socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq

from testbed.control.client import ControlClient
from testbed.control.config import ClientConfig, Event
from testbed.control.protocol import Body, Envelope, Rejected, UplinkDone, decode, encode, make_envelope
from testbed.control.security import CurveClientKeys, CurveServerKeys
from testbed.control.server import ControlServer

HEARTBEAT_S = 0.1  # short, so liveness tests take a second or two
WAIT_S = 15.0  # generous: the CI machine is shared and noisy
UE_IDS = ("ue-1", "ue-2", "ue-3")


@dataclass(frozen=True)
class KeyRing:
    """Key files of one test module: the BS, the allow-listed UEs, and an intruder that is not listed."""

    root: Path
    bs_secret: Path
    bs_public: Path
    allowed_dir: Path

    def server(self) -> CurveServerKeys:
        return CurveServerKeys.from_files(self.bs_secret, self.allowed_dir)

    def client(self, name: str, *, server_public: Path | None = None) -> CurveClientKeys:
        secret = self.allowed_dir / f"{name}.key_secret"
        if not secret.exists():
            secret = self.root / "intruders" / f"{name}.key_secret"
        return CurveClientKeys.from_files(secret, server_public or self.bs_public)


def client_config(ue_id: str, endpoint: str, **overrides: object) -> ClientConfig:
    settings = {
        "heartbeat_interval_s": HEARTBEAT_S,
        "retry_initial_s": 0.2,
        "retry_max_s": 1.0,
        "reconnect_ivl_s": 0.2,
        **overrides,
    }
    return ClientConfig(ue_id, endpoint, **settings)  # type: ignore[arg-type]


def poll_until(server: ControlServer, done: Callable[[list[Event]], bool], *, timeout_s: float = WAIT_S) -> list[Event]:
    """Drive the server loop until ``done(events so far)``; fail with what was seen if it never happens."""
    events: list[Event] = []
    end = time.monotonic() + timeout_s
    while not done(events):
        if time.monotonic() > end:
            raise AssertionError(f"condition not met in {timeout_s} s; events: {[(e.kind, e.ue_id) for e in events]}")
        events += server.poll(0.05)
    return events


def kinds(events: list[Event], kind: str) -> list[str]:
    return [e.ue_id for e in events if e.kind == kind]


class ClientThread:
    """A ControlClient in its own thread, as a UE agent would run it; answers ROUND_START with UPLINK_DONE."""

    def __init__(self, config: ClientConfig, security: object) -> None:
        self._config, self._security = config, security
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"client-{config.ue_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client = ControlClient(self._config, self._security)  # type: ignore[arg-type]
        try:
            while not self._stop.is_set():
                for event in client.poll(0.05):
                    if event.message is not None and event.message.type == "ROUND_START":
                        client.send(UplinkDone(1, 10, 12_000, 0.01, 0.5))
        finally:
            client.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT_S)
        if self._thread.is_alive():
            raise AssertionError(f"client thread {self._thread.name} did not stop")


class RawUe:
    """A bare DEALER holding a UE's keys: sends hand-made (also malicious) frames, reads raw replies."""

    def __init__(self, endpoint: str, security: CurveClientKeys) -> None:
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.sndhwm = 0  # never block the test on a full queue
        self.sock.curve_secretkey = security.secret_key
        self.sock.curve_publickey = security.public_key
        self.sock.curve_serverkey = security.server_public_key
        self.sock.connect(endpoint)

    def send(self, body: Body, *, ue_id: str, seq: int, round: int = 0) -> None:
        self.sock.send(encode(make_envelope(body, ue_id=ue_id, seq=seq, round=round)))

    def recv(self, server: ControlServer, *, timeout_s: float = WAIT_S) -> Envelope:
        """Drive ``server`` until a valid message arrives here."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            server.poll(0.02)
            if self.sock.poll(0):
                try:
                    return decode(self.sock.recv())
                except Rejected as exc:
                    raise AssertionError(f"server sent an invalid message: {exc}") from exc
        raise AssertionError(f"no message from the server in {timeout_s} s")

    def close(self) -> None:
        self.sock.close()
        self.context.term()
