"""Helpers of the virtual-Pluto tests: a small scenario and a bare protocol client."""

from __future__ import annotations

import socket

from testbed.radio.scenario import Scenario, scenario_from_dict

RATE_HZ = 2.5e6


def make_scenario(**overrides: object) -> Scenario:
    """Two boards 20 m apart with different crystals (about 24 dB SNR at 0 dBm), plus an idle third."""
    fields: dict = {
        "seed": 5,
        "center_freq_hz": 2.4e9,
        "sample_rate_hz": RATE_HZ,
        "noise_floor_dbm": -90.0,
        "nodes": [
            {"id": "bs", "position_m": [0.0, 0.0]},
            {"id": "ue-1", "position_m": [20.0, 0.0], "crystal_ppm": 2.0},
            {"id": "ue-2", "position_m": [0.0, 30.0], "crystal_ppm": -3.0},
        ],
    }
    fields.update(overrides)
    return scenario_from_dict(fields)


class Raw:
    """A bare protocol client: send a line, read reply lines or bytes."""

    def __init__(self, uri: str) -> None:
        host, port = uri.split(":")[1:]
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> str:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self._buf += chunk
        head, self._buf = self._buf.split(b"\n", 1)
        return head.decode()

    def exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self._buf += chunk
        head, self._buf = self._buf[:n], self._buf[n:]
        return head

    def ask(self, command: str) -> str:
        self.send(command.encode() + b"\r\n")
        return self.line()

    def closed(self) -> bool:
        """True once the server has closed this connection."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, OSError):
            return True

    def close(self) -> None:
        self.sock.close()
