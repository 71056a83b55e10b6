"""In-process loopback backend: several radios in one process sharing one ``Air`` (unit and integration tests).

There is no waiting here: a receive is served at once from the bursts already on the air, so the caller's
program order is the schedule (transmit first, then let the others receive that window).
"""

from __future__ import annotations

import numpy as np

from testbed.errors import ConfigError
from testbed.radio.air import Air
from testbed.radio.base import Radio, RadioConfig, RxBlock


def check_matches_scenario(config: RadioConfig, air: Air) -> None:
    """The virtual air runs at one carrier and rate; refuse a radio configured otherwise."""
    sc = air.scenario
    if config.sample_rate_hz != sc.sample_rate_hz or config.center_freq_hz != sc.center_freq_hz:
        raise ConfigError(
            f"the scenario runs at {sc.center_freq_hz:g} Hz, {sc.sample_rate_hz:g} S/s; the radio asked for "
            f"{config.center_freq_hz:g} Hz, {config.sample_rate_hz:g} S/s: configure the radio to match"
        )


class LoopbackRadio(Radio):
    """One node of an in-process ``Air``; joins on construction, leaves on close."""

    def __init__(self, air: Air, node_id: str) -> None:
        super().__init__()
        self._air, self.node_id = air, node_id
        air.join(node_id)

    def _apply(self, config: RadioConfig) -> None:
        check_matches_scenario(config, self._air)
        self._air.set_radio(self.node_id, config.tx_power_dbm, config.rx_gain_mode, config.rx_gain_db)

    def _transmit(self, iq: np.ndarray, at_sample: int | None) -> int:
        return self._air.transmit(self.node_id, iq, at_sample)

    def _receive(self, num_samples: int) -> RxBlock:
        self._air.request(self.node_id, num_samples)
        return self._air.collect(self.node_id)

    def _close(self) -> None:
        self._air.leave(self.node_id)
