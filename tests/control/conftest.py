"""Control-plane fixtures: keys on disk, servers, client threads and raw sockets that are always closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from control_helpers import HEARTBEAT_S, UE_IDS, ClientThread, KeyRing, RawUe

from testbed.control.config import ClientConfig, ServerConfig
from testbed.control.security import generate_keypair
from testbed.control.server import ControlServer


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    root = tmp_path_factory.mktemp("keys")
    bs = generate_keypair(root / "bs", "bs")
    for ue in UE_IDS:
        generate_keypair(root / "ues", ue)
    generate_keypair(root / "intruders", "intruder")
    generate_keypair(root / "intruders", "fake-bs")
    return KeyRing(root, bs.secret_file, bs.public_file, root / "ues")


@pytest.fixture
def make_server(keys: KeyRing) -> Iterator[Callable[..., ControlServer]]:
    """Factory of CURVE servers on ephemeral 127.0.0.1 ports; every one is closed after the test."""
    servers: list[ControlServer] = []

    def factory(security: object | None = None, **overrides: object) -> ControlServer:
        config = ServerConfig(**{"heartbeat_interval_s": HEARTBEAT_S, **overrides})  # type: ignore[arg-type]
        server = ControlServer(config, security if security is not None else keys.server())  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.close(say_bye=False)


@pytest.fixture
def start_client() -> Iterator[Callable[..., ClientThread]]:
    threads: list[ClientThread] = []

    def factory(config: ClientConfig, security: object) -> ClientThread:
        thread = ClientThread(config, security)
        threads.append(thread)
        return thread

    yield factory
    for thread in threads:
        thread.stop()


@pytest.fixture
def raw_ue(keys: KeyRing) -> Iterator[Callable[..., RawUe]]:
    sockets: list[RawUe] = []

    def factory(endpoint: str, name: str = "ue-1") -> RawUe:
        raw = RawUe(endpoint, keys.client(name))
        sockets.append(raw)
        return raw

    yield factory
    for raw in sockets:
        raw.close()
