"""What each centralized mode costs a weak UE over the training horizon, priced as the virtual clock charges it.

A weak UE hands its training to the BS in one of two ways: it uploads its raw samples (centralized_full; all
in its first round, or ``raw_samples_per_round`` per round) or it runs the encoder every round and sends the
semantic symbols with their labels (centralized_decoder). The grouping (grouping.py) compares the two with the
numbers the learning layer will charge, so the choice follows the cost model rather than a fixed SNR:

- airtime: the caller's ``testbed.learning.clock.Airtime`` (testbed/link/airtime.py: exact frame lengths at
  the MCS the UE's SNR affords, including the expected ARQ repairs) at the UE's maximum TX power; the UE's own
  bursts (``on_air_s``), not the cycles it waits for its slots;
- radio energy ``P x airtime``, compute energy ``kappa C f^2`` (testbed/learning/cost.py).

Symbols, per round: the encoder forward on ``samples_per_round`` samples (``encoder_fraction`` of a training
step) at the UE's *lowest* clock (the least the symbol path could cost after resource allocation, so raw data
are chosen only when they beat the cheapest symbols), plus the analog symbols and the label bytes; over the
horizon, times the rounds remaining. Raw: the samples the UE holds (or as many blocks as the horizon takes),
in the uploads the round runner makes. A link too poor for any coded MCS makes the raw upload infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from testbed.errors import PolicyError, TestbedError
from testbed.learning.clock import Airtime
from testbed.learning.cost import compute_energy_j, radio_energy_j
from testbed.link.messages import ChannelReport
from testbed.policy.capability import CapabilityReport
from testbed.policy.link_budget import validate_channel
from testbed.policy.work import WorkSizes


@dataclass(frozen=True)
class CentralizedCost:
    """One UE's two centralized options over ``rounds_remaining`` rounds (seconds on air, joules at the UE)."""

    rounds_remaining: int
    raw_airtime_s: float
    raw_energy_j: float
    symbols_airtime_s_per_round: float
    symbols_energy_j_per_round: float

    @property
    def symbols_airtime_s(self) -> float:
        """Airtime of the symbols over the horizon."""
        return self.rounds_remaining * self.symbols_airtime_s_per_round

    @property
    def symbols_energy_j(self) -> float:
        """Energy of the symbol path over the horizon."""
        return self.rounds_remaining * self.symbols_energy_j_per_round

    @property
    def break_even_rounds(self) -> float:
        """Rounds from which the raw upload costs no more energy than the symbols (inf if never)."""
        if not math.isfinite(self.raw_energy_j):
            return math.inf
        return self.raw_energy_j / self.symbols_energy_j_per_round if self.symbols_energy_j_per_round > 0 else math.inf


def _upload_s(airtime: Airtime, payload_bytes: int, snr_db: float, analog_symbols: int = 0) -> float:
    """The UE's bursts of one upload, inf when the airtime model refuses the link (no usable MCS)."""
    try:
        return airtime.upload(payload_bytes, snr_db, analog_symbols).on_air_s
    except TestbedError:
        return math.inf


def centralized_cost(
    report: CapabilityReport,
    channel: ChannelReport,
    work: WorkSizes,
    local_samples: int,
    rounds_remaining: int,
    airtime: Airtime,
) -> CentralizedCost:
    """Price both centralized modes for one UE holding ``local_samples`` samples (module docstring).

    Raises PolicyError for an invalid report or a negative sample count or horizon.
    """
    report.validate()
    validate_channel(report.ue_id, channel)
    if local_samples < 0 or rounds_remaining < 0:
        raise PolicyError(
            f"UE {report.ue_id!r}: local_samples={local_samples} and rounds_remaining={rounds_remaining} must be >= 0"
        )
    power_dbm = report.max_tx_power_dbm
    snr_db = channel.snr_db_at(power_dbm)
    block = work.raw_samples_per_round
    sent = local_samples if block == 0 else min(local_samples, rounds_remaining * block)
    full_blocks, rest = divmod(sent, block) if block else (0, sent)
    raw_s = full_blocks * _upload_s(airtime, block * work.raw_bytes_per_sample, snr_db) if full_blocks else 0.0
    if rest:
        raw_s += _upload_s(airtime, rest * work.raw_bytes_per_sample, snr_db)
    n = work.samples_per_round
    symbols_s = _upload_s(airtime, n * work.label_bytes_per_sample, snr_db, n * work.symbols_per_sample)
    encoder_j = compute_energy_j(
        n,
        report.cycles_per_sample * work.encoder_fraction,
        report.frequency_table.min_hz,
        report.kappa_j_per_cycle_hz2,
    )
    return CentralizedCost(
        rounds_remaining=rounds_remaining,
        raw_airtime_s=raw_s,
        raw_energy_j=_radio_j(power_dbm + report.tx_draw_offset_db, raw_s),
        symbols_airtime_s_per_round=symbols_s,
        symbols_energy_j_per_round=encoder_j + _radio_j(power_dbm + report.tx_draw_offset_db, symbols_s),
    )


def _radio_j(power_dbm: float, airtime_s: float) -> float:
    return radio_energy_j(power_dbm, airtime_s) if math.isfinite(airtime_s) else math.inf
