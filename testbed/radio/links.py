"""Per-link propagation for the virtual air: what node B receives when node A transmits a burst.

Each ordered pair (tx, rx) gets its own chain, built from testbed.channel: sampling-clock offset from the
two crystals, optional block fading (new realisation per burst), carrier offset from the two crystals, and
the path loss. The carrier rotation uses the absolute sample time of the burst (not a phase carried from
the previous burst) so the result does not depend on how bursts were split or interleaved.
"""

from __future__ import annotations

import math

import numpy as np

from testbed.channel import Multipath, SamplingClockOffset, path_loss_db
from testbed.radio.scenario import DEFAULT_OCCUPIED_FRACTION, Scenario


def received_power_dbm(scenario: Scenario, tx: str, rx: str, tx_power_dbm: float | None = None) -> float:
    """Mean power at ``rx`` of a unit-power burst from ``tx`` (before fading)."""
    power = scenario.node(tx).tx_power_dbm if tx_power_dbm is None else tx_power_dbm
    loss = path_loss_db(scenario.distance_m(tx, rx), scenario.center_freq_hz, scenario.path_loss_exponent)
    return power - float(loss)


def configured_snr_db(
    scenario: Scenario,
    tx: str,
    rx: str,
    occupied_fraction: float = DEFAULT_OCCUPIED_FRACTION,
    tx_power_dbm: float | None = None,
) -> float:
    """The link's Es/N0 per data subcarrier in dB, the PHY's definition: P_rx / (occupied_fraction * N)."""
    rx_dbm = received_power_dbm(scenario, tx, rx, tx_power_dbm)
    return rx_dbm - scenario.noise_floor_dbm - 10.0 * math.log10(occupied_fraction)


class Link:
    """The propagation from one node to another; call it on each burst in transmit order.

    rng : this link's own generator (fading draws), so links never share random state. pair_rng : the
    generator of the quasi-static draw of a selective node's links, the same for both directions (default
    ``rng``).
    """

    def __init__(
        self, scenario: Scenario, tx: str, rx: str, rng: np.random.Generator,
        pair_rng: np.random.Generator | None = None,
    ) -> None:  # fmt: skip
        self.tx, self.rx = tx, rx
        self._scenario = scenario
        self.cfo_hz = scenario.cfo_hz(tx, rx)
        self.sco_ppm = (scenario.clock_ratio(tx, rx) - 1.0) * 1e6
        self._loss_db = float(
            path_loss_db(scenario.distance_m(tx, rx), scenario.center_freq_hz, scenario.path_loss_exponent)
        )
        self._step_rad = 2.0 * math.pi * self.cfo_hz / scenario.sample_rate_hz
        self._table = np.ones(0, np.complex64)
        selective = next((n for n in (scenario.node(tx), scenario.node(rx)) if n.channel == "multipath"), None)
        if scenario.fading:
            self._multipath = Multipath(scenario.rms_delay_spread_samples, rng, k_factor_db=scenario.k_factor_db,
                                        block_fading=True)  # fmt: skip
        elif selective is not None:  # one quasi-static draw for the link (NodeSpec)
            self._multipath = Multipath(selective.rms_delay_spread_samples, pair_rng or rng,
                                        k_factor_db=selective.k_factor_db, block_fading=False)  # fmt: skip
        else:
            self._multipath = None

    def _rotor(self, n: int) -> np.ndarray:
        """(n,) complex64 exp(j step k), k = 0..n-1 (computed in float64, cached and grown as needed)."""
        if self._table.size < n:
            size = max(n, 2 * self._table.size)
            self._table = np.exp(1j * self._step_rad * np.arange(size, dtype=np.float64)).astype(np.complex64)
        return self._table[:n]

    def __call__(self, iq: np.ndarray, start_sample: int, tx_power_dbm: float) -> np.ndarray:
        """iq : (n,) complex64 unit-power burst starting at ``start_sample`` -> (m,) complex64 at the receiver,
        in receiver full-scale units at 0 dB gain (m differs from n by the clock offset and fading tail)."""
        x = iq
        if self.sco_ppm != 0.0:
            sco = SamplingClockOffset(self.sco_ppm)  # fresh per burst: no history from an earlier burst
            lat = SamplingClockOffset.LATENCY_SAMPLES
            x = sco(np.concatenate([x, np.zeros(2 * lat + 1, np.complex64)]))[lat:]
        if self._multipath is not None:
            taps = self._multipath.power_delay_profile.size
            x = self._multipath(np.concatenate([x, np.zeros(taps - 1, np.complex64)]))
        gain_db = tx_power_dbm - self._loss_db - self._scenario.rx_full_scale_dbm
        amplitude = 10.0 ** (gain_db / 20.0)
        if self._step_rad == 0.0:
            return (x * np.float32(amplitude)).astype(np.complex64, copy=False)
        # exp(j step (start + k)) = [amplitude exp(j step start)] * exp(j step k), the last from a cached table
        head = amplitude * np.exp(1j * math.remainder(self._step_rad * start_sample, 2.0 * math.pi))
        return x * (self._rotor(x.size) * np.complex64(head))
