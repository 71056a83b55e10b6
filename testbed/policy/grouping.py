"""Grouping at the BS: one group per training mode, from capabilities, the UEs' own choices, channels and costs.

Rules (``GroupingConfig.rule``; the last three are variants and ablations):

- ``joint`` (default): a UE that chose distributed (or, without a decision, reaches the capability
  threshold) trains locally. A weak UE goes centralized_full (uploads its raw samples; the BS trains phi and
  theta on clean data) when that costs it no more energy over the training horizon than sending semantic
  symbols every round, or when the raw upload fits the one-time airtime budget ``raw_upload_budget_s``;
  otherwise centralized_decoder. Both sides are priced with the learning layer's cost model and airtime
  (centralized_cost.py); the reason logs airtime and energy of both.
- ``joint_snr``: as ``joint``, but a weak UE uploads raw samples when its SNR at maximum power reaches
  ``good_channel_snr_db`` (a fixed threshold; the rule before the cost model) and sends symbols below it.
- ``capability``: capability only; strong -> distributed, weak -> ``weak_mode`` (centralized_full, as HFCL).
- ``channel``: channel only; good channel -> distributed, poor -> centralized_decoder.

Fallbacks: an invalid capability report counts as weak, an invalid or missing channel report as poor, a
missing cost estimate as "symbols"; the reason string says so. Every UE's group and reason is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from testbed.errors import PolicyError
from testbed.link.messages import ChannelReport
from testbed.mode import Mode
from testbed.policy.capability import CapabilityReport
from testbed.policy.centralized_cost import CentralizedCost
from testbed.policy.decision import ModeDecision, UeChoice
from testbed.policy.link_budget import validate_channel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupingConfig:
    """Which rule, and its thresholds (samples/s at the UE's maximum frequency; dB at its maximum power;
    ``raw_upload_budget_s``: seconds of uplink airtime a weak UE may always spend once on its raw data, 0: none)."""

    rule: str = "joint"
    capability_threshold_samples_per_s: float = 1000.0
    good_channel_snr_db: float = 15.0
    weak_mode: Mode = Mode.CENTRALIZED_FULL
    raw_upload_budget_s: float = 0.0

    def __post_init__(self) -> None:
        if self.rule not in GROUPING_RULES:
            raise PolicyError(f"grouping rule {self.rule!r} is unknown; choose one of {', '.join(GROUPING_RULES)}")
        threshold = self.capability_threshold_samples_per_s
        if not (math.isfinite(threshold) and threshold > 0):
            raise PolicyError(f"capability_threshold_samples_per_s={threshold!r} must be finite and > 0")
        if not math.isfinite(self.good_channel_snr_db):
            raise PolicyError(f"good_channel_snr_db={self.good_channel_snr_db!r} must be finite")
        if self.weak_mode not in (Mode.CENTRALIZED_FULL, Mode.CENTRALIZED_DECODER):
            raise PolicyError(f"weak_mode={self.weak_mode!r} must be a centralized mode")
        if not (math.isfinite(self.raw_upload_budget_s) and self.raw_upload_budget_s >= 0):
            raise PolicyError(f"raw_upload_budget_s={self.raw_upload_budget_s!r} must be finite and >= 0")


@dataclass(frozen=True)
class UeObservation:
    """Everything the BS holds about one UE when it groups (any part may be missing)."""

    ue_id: str
    capability: CapabilityReport | None = None
    channel: ChannelReport | None = None
    decision: ModeDecision | None = None
    cost: CentralizedCost | None = None


@dataclass(frozen=True)
class GroupAssignment:
    """One UE's group and the reason, for the logs and the experiment report."""

    ue_id: str
    mode: Mode
    reason: str


def _strength(obs: UeObservation, cfg: GroupingConfig, use_decision: bool) -> tuple[bool, str]:
    """(is strong, why) from the UE's own decision or its capability report."""
    if use_decision and obs.decision is not None:
        return obs.decision.choice is UeChoice.DISTRIBUTED, f"UE chose {obs.decision.choice}: {obs.decision.reason}"
    if obs.capability is None:
        return False, "no capability report (treated as weak)"
    try:
        obs.capability.validate()
    except PolicyError as exc:
        return False, f"invalid capability report (treated as weak): {exc}"
    rate = obs.capability.samples_per_s_at(obs.capability.frequency_table.max_hz)
    threshold = cfg.capability_threshold_samples_per_s
    return rate >= threshold, f"capability {rate:.4g} samples/s {'>=' if rate >= threshold else '<'} {threshold:.4g}"


def _channel(obs: UeObservation, cfg: GroupingConfig) -> tuple[bool, str]:
    """(is good, why): SNR at the UE's maximum power (its reported power when its capability is unknown)."""
    if obs.channel is None:
        return False, "no channel report (treated as poor)"
    try:
        validate_channel(obs.ue_id, obs.channel)
    except PolicyError as exc:
        return False, f"invalid channel report (treated as poor): {exc}"
    power = obs.channel.tx_power_dbm
    if obs.capability is not None and math.isfinite(obs.capability.max_tx_power_dbm):
        power = obs.capability.max_tx_power_dbm
    snr = obs.channel.snr_db_at(power)
    good = snr >= cfg.good_channel_snr_db
    gain = f", gain {obs.channel.mean_gain_db:.1f} dB" if obs.channel.mean_gain_db is not None else ""
    return good, f"SNR {snr:.1f} dB at {power:.1f} dBm{gain} {'>=' if good else '<'} {cfg.good_channel_snr_db:.1f} dB"


def _weak_by_cost(obs: UeObservation, cfg: GroupingConfig, why_cap: str) -> GroupAssignment:
    """centralized_full when raw data cost no more energy over the horizon than symbols, or fit the budget."""
    c = obs.cost
    if c is None:
        return GroupAssignment(obs.ue_id, Mode.CENTRALIZED_DECODER, f"weak, no cost estimate (symbols): {why_cap}")
    raw = f"raw data {c.raw_airtime_s:.4g} s / {c.raw_energy_j:.4g} J"
    symbols = f"symbols {c.symbols_airtime_s:.4g} s / {c.symbols_energy_j:.4g} J over {c.rounds_remaining} rounds"
    if math.isfinite(c.raw_energy_j) and c.raw_energy_j <= c.symbols_energy_j:
        return GroupAssignment(obs.ue_id, Mode.CENTRALIZED_FULL, f"weak, {raw} <= {symbols}: {why_cap}")
    if c.raw_airtime_s <= cfg.raw_upload_budget_s:
        budget = f"{raw} within the one-time budget {cfg.raw_upload_budget_s:.4g} s ({symbols})"
        return GroupAssignment(obs.ue_id, Mode.CENTRALIZED_FULL, f"weak, {budget}: {why_cap}")
    return GroupAssignment(obs.ue_id, Mode.CENTRALIZED_DECODER, f"weak, {raw} > {symbols}: {why_cap}")


def _joint(obs: UeObservation, cfg: GroupingConfig) -> GroupAssignment:
    strong, why_cap = _strength(obs, cfg, use_decision=True)
    if strong:
        return GroupAssignment(obs.ue_id, Mode.DISTRIBUTED, f"strong: {why_cap}")
    return _weak_by_cost(obs, cfg, why_cap)


def _joint_snr(obs: UeObservation, cfg: GroupingConfig) -> GroupAssignment:
    strong, why_cap = _strength(obs, cfg, use_decision=True)
    if strong:
        return GroupAssignment(obs.ue_id, Mode.DISTRIBUTED, f"strong: {why_cap}")
    good, why_ch = _channel(obs, cfg)
    if good:
        return GroupAssignment(obs.ue_id, Mode.CENTRALIZED_FULL, f"weak on a good channel: {why_cap}; {why_ch}")
    return GroupAssignment(obs.ue_id, Mode.CENTRALIZED_DECODER, f"weak on a poor channel: {why_cap}; {why_ch}")


def _by_capability(obs: UeObservation, cfg: GroupingConfig) -> GroupAssignment:
    strong, why = _strength(obs, cfg, use_decision=False)
    return GroupAssignment(obs.ue_id, Mode.DISTRIBUTED if strong else cfg.weak_mode, f"capability only: {why}")


def _by_channel(obs: UeObservation, cfg: GroupingConfig) -> GroupAssignment:
    good, why = _channel(obs, cfg)
    return GroupAssignment(obs.ue_id, Mode.DISTRIBUTED if good else Mode.CENTRALIZED_DECODER, f"channel only: {why}")


#: Grouping rules by name; each maps one UE's observation to its group.
GROUPING_RULES: dict[str, Callable[[UeObservation, GroupingConfig], GroupAssignment]] = {
    "joint": _joint,
    "joint_snr": _joint_snr,
    "capability": _by_capability,
    "channel": _by_channel,
}


def group_ues(observations: Sequence[UeObservation], cfg: GroupingConfig) -> list[GroupAssignment]:
    """Group every UE (in input order) with the configured rule; logs each UE's group and reason."""
    ids = [o.ue_id for o in observations]
    if len(set(ids)) != len(ids):
        raise PolicyError(f"UE ids must be unique for grouping, got {ids}")
    rule = GROUPING_RULES[cfg.rule]
    assignments = [rule(obs, cfg) for obs in observations]
    for a in assignments:
        log.info("UE %s -> %s (%s rule): %s", a.ue_id, a.mode, cfg.rule, a.reason)
    return assignments


def groups(assignments: Sequence[GroupAssignment]) -> dict[Mode, list[str]]:
    """UE ids per mode (every training mode present, possibly empty)."""
    out: dict[Mode, list[str]] = {m: [] for m in (Mode.DISTRIBUTED, Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_FULL)}
    for a in assignments:
        out[a.mode].append(a.ue_id)
    return out
