"""Fixtures for the radio tests: small scenarios and an in-thread hub that is always stopped."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from testbed.radio.base import RadioConfig
from testbed.radio.hub_server import HubServer
from testbed.radio.scenario import Scenario, scenario_from_dict


def make_scenario(**overrides: object) -> Scenario:
    """Three nodes in a line with different crystals; fields can be overridden."""
    fields: dict = {
        "seed": 11,
        "center_freq_hz": 2.4e9,
        "sample_rate_hz": 2.5e6,
        "noise_floor_dbm": -90.0,
        "nodes": [
            {"id": "bs", "position_m": [0.0, 0.0], "crystal_ppm": 0.0, "tx_power_dbm": 0.0},
            {"id": "ue1", "position_m": [20.0, 0.0], "crystal_ppm": 3.0, "tx_power_dbm": 0.0},
            {"id": "ue2", "position_m": [0.0, 40.0], "crystal_ppm": -2.0, "tx_power_dbm": -5.0},
        ],
    }
    fields.update(overrides)
    return scenario_from_dict(fields)


RADIO = RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=2.5e6, tx_power_dbm=0.0, rx_gain_db=0.0)


@pytest.fixture
def scenario() -> Scenario:
    return make_scenario()


@pytest.fixture
def hub(scenario: Scenario) -> Iterator[HubServer]:
    """A hub on an ephemeral loopback port, served from a thread; stopped and closed after the test."""
    server = HubServer(scenario)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop, 0.02), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
