"""Virtual ADALM-Plutos: libiio's network protocol served per scenario node, buffers through the hub's air.

``start(scenario)`` gives one ``VirtualPluto`` per node, each on its own port (or its own loopback address
at libiio's default port), all on one ``SharedAir``; pyadi-iio, Debian's iio_* tools and the testbed's Pluto
backend use them unmodified (``ip:127.0.0.1:PORT``). What is modelled and what is not: docs/virtual-pluto.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.emu.iiod import VirtualPluto
from testbed.emu.medium import SharedAir
from testbed.errors import ConfigError
from testbed.radio.scenario import Scenario

IIOD_PORT = 30431  # libiio's default network port

__all__ = ["IIOD_PORT", "Emulator", "SharedAir", "VirtualPluto", "start"]


@dataclass
class Emulator:
    """The running boards of one scenario; ``close`` stops them all."""

    medium: SharedAir
    plutos: dict[str, VirtualPluto]

    @property
    def uris(self) -> dict[str, str]:
        return {node_id: p.uri for node_id, p in self.plutos.items()}

    def close(self) -> None:
        for pluto in self.plutos.values():
            pluto.close()
        self.medium.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start(
    scenario: Scenario,
    host: str = "127.0.0.1",
    port: int = 0,
    address_per_node: bool = False,
    realtime: bool = False,
    workers: int = 1,
    rf_cable_db: float | None = None,
) -> Emulator:
    """One virtual Pluto per scenario node. ``port`` 0: any free port each; else consecutive ports from
    ``port``. ``address_per_node``: node k listens on 127.0.0.(k + 2) at ``port`` (default 30431), so its URI
    needs no port, as a lab board's does. ``rf_cable_db``: each board's TX cabled to its own RX (see SharedAir)."""
    medium = SharedAir(scenario, workers=workers, realtime=realtime, rf_cable_db=rf_cable_db)
    plutos: dict[str, VirtualPluto] = {}
    try:
        for k, node_id in enumerate(scenario.node_ids):
            if address_per_node:
                if k > 250:
                    raise ConfigError("address_per_node serves at most 251 nodes (127.0.0.2..127.0.0.252)")
                where = (f"127.0.0.{k + 2}", port or IIOD_PORT)
            else:
                where = (host, port + k if port else 0)
            try:
                plutos[node_id] = VirtualPluto(medium, node_id, *where)
            except OSError as exc:
                raise ConfigError(
                    f"virtual Pluto {node_id} cannot listen on {where[0]}:{where[1]}: {exc.strerror}"
                ) from exc
    except BaseException:
        for pluto in plutos.values():
            pluto.close()
        medium.close()
        raise
    return Emulator(medium, plutos)
