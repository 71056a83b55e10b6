"""Benchmarks of the policy: resource allocation vs every UE at maximum power and frequency, and the
repeatability of the capability measurement.

Both sides use the same grouping (UE decisions + BS rule) and the same deadline; the deadline is ``factor``
times the round time at maximum power and frequency (factor 1: allocation may not lengthen the round).
Scenarios: the learning layer's default scenario (the CLI loads it from testbed/experiment) or the
profiles scenario built here from profiles.toml: 10 UEs, 4 weak (2 Pi Zero 2, 2 Pi 3) and 6 strong
(4 Pi 4, 2 Pi 5), uplink SNR 5-25 dB at 0 dBm RF output, the Pluto's RF power range (-82.75..7 dBm) for
power control, and the codec's throughput anchored at a reference Pi 4 figure or measured on this host.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from testbed.learning.assignment import UeProfile as LearningUe
from testbed.learning.clock import Airtime
from testbed.policy.allocation import (
    AllocationConfig,
    RoundWork,
    UeResources,
    allocate_round,
    max_performance,
    shortest_deadline_s,
)
from testbed.policy.assign import (
    DEFAULT_DEADLINE_FACTOR,
    MEDIAN_THRESHOLD_FRACTION,
    PolicyAssignment,
    PolicyConfig,
)
from testbed.policy.capability import DEFAULT_BLOCK_S, ThroughputMeasurement, measure_codec_throughput
from testbed.policy.grouping import GroupingConfig
from testbed.policy.profiles import default_profiles
from testbed.policy.work import WorkSizes

#: (UE id, profile, uplink SNR in dB at 0 dBm RF output) of the profiles scenario.
PROFILE_UES: tuple[tuple[str, str, float], ...] = (
    ("ue0", "pi_zero_2", 6.0),
    ("ue1", "pi_zero_2", 21.0),
    ("ue2", "pi_3", 9.0),
    ("ue3", "pi_3", 24.0),
    ("ue4", "pi_4", 5.0),
    ("ue5", "pi_4", 12.0),
    ("ue6", "pi_4", 17.0),
    ("ue7", "pi_4", 25.0),
    ("ue8", "pi_5", 8.0),
    ("ue9", "pi_5", 15.0),
)
# Pi 4 training throughput of the default codec (samples/s at 1.5 GHz), the profiles scenario's anchor.
# Estimate: this 2-core host measured 14,100-16,300 samples/s idle (testbed policy capability), and the
# laptop profile it stands for is 6x a Pi 4 (profiles.toml), giving 2,350-2,700.
REFERENCE_PI4_SAMPLES_PER_S = 2500.0
# The profiles scenario streams raw data: a centralized-full UE sends 160 samples every round.
PROFILE_RAW_BLOCK_SAMPLES = 160
# Samples per UE and training rounds of the profiles scenario, as in testbed/experiment's default scenario
# (4,000 MNIST training images over 10 UEs, 60 rounds): what the cost-aware grouping prices.
PROFILE_LOCAL_SAMPLES = 400
PROFILE_HORIZON_ROUNDS = 60
# The Pluto's TX attenuation range (AD9363 datasheet): how far below maximum power control may go.
PLUTO_POWER_CONTROL_DB = 89.75
# Deadlines the allocation benchmark compares at: the shortest round, the policy's default, and looser ones.
DEADLINE_FACTORS = (1.0, DEFAULT_DEADLINE_FACTOR, 1.5, 2.0)


def measure_host(
    repeats: int = 7, clock: Callable[[], float] | None = None, block_s: float = DEFAULT_BLOCK_S
) -> ThroughputMeasurement:
    """The host's training throughput of the default codec, measured exactly as a UE measures itself
    (measure_codec_throughput; ``clock`` None: the UE's clock, measurement_clock)."""
    import torch

    from testbed.learning.codec import SemanticCodec
    from testbed.learning.codec_config import CodecConfig

    codec = SemanticCodec(CodecConfig(), torch.Generator().manual_seed(0))
    return measure_codec_throughput(codec, repeats=repeats, block_s=block_s, clock=clock)


def profile_scenario(pi4_samples_per_s: float) -> list[LearningUe]:
    """The profiles scenario as the learning layer describes UEs (at maximum RF power, 7 dBm)."""
    profiles = default_profiles()
    host_rate = pi4_samples_per_s / profiles.speed_scale("pi_4")
    out = []
    for ue_id, name, snr_db in PROFILE_UES:
        p = profiles.get(name)
        rate = host_rate * profiles.speed_scale(name)
        out.append(
            LearningUe(
                ue_id,
                p.relative_speed < 1,
                snr_db + p.max_tx_power_dbm,
                p.max_tx_power_dbm,
                p.cpu_freq_max_hz,
                p.cpu_freq_max_hz,
                p.cpu_freq_max_hz / rate,
                p.kappa_j_per_cycle_hz2,
            )  # fmt: skip
        )
    return out


def compare(
    ues: Sequence[tuple[UeResources, RoundWork]], deadline_factors: Sequence[float], alloc_cfg: AllocationConfig
) -> dict[str, Any]:
    """Energy per round with allocation vs every UE at maximum power and frequency, per deadline factor."""
    baseline = [max_performance(ue, work, alloc_cfg) for ue, work in ues]
    base_time = max(b.round_time_s for b in baseline)
    base_energy = sum(b.energy_j for b in baseline)
    rows = []
    for factor in deadline_factors:
        plan = allocate_round(ues, factor * base_time, alloc_cfg)
        per_ue = {
            a.ue_id: {
                "cpu_freq_mhz": a.cpu_freq_hz / 1e6, "tx_power_dbm": a.tx_power_dbm, "mcs": a.mcs,
                "energy_j": a.energy_j, "max_power_energy_j": b.energy_j, "budget_j": a.energy_budget_j,
            }
            for a, b in zip(plan.allocations, baseline, strict=True)
        }  # fmt: skip
        rows.append(
            {
                "deadline_factor": factor,
                "deadline_s": plan.deadline_s,
                "allocated_energy_j": plan.total_energy_j,
                "max_power_energy_j": base_energy,
                "energy_saving": 1.0 - plan.total_energy_j / base_energy,
                "all_within_budget": all(a.within_budget for a in plan.allocations),
                "allocated_round_time_s": plan.round_time_s,
                "per_ue": per_ue,
            }
        )
    return {
        "max_power_round_time_s": base_time,
        "max_power_all_within_budget": all(b.within_budget for b in baseline),
        "shortest_feasible_deadline_s": shortest_deadline_s(ues, alloc_cfg),
        "deadlines": rows,
    }


def run_allocation_bench(
    ues: Sequence[LearningUe],
    work: WorkSizes,
    *,
    threshold_samples_per_s: float | None = None,
    rule: str = "joint",
    deadline_factors: Sequence[float] = DEADLINE_FACTORS,
    tx_power_control_db: float = 0.0,
    alloc_cfg: AllocationConfig | None = None,
    airtime: Airtime | None = None,
    local_samples: Mapping[str, int] | None = None,
    horizon_rounds: int | None = None,
) -> dict[str, Any]:
    """Group ``ues`` with the policy (threshold: absolute, or by default MEDIAN_THRESHOLD_FRACTION of the median
    UE; ``airtime``, ``local_samples``, ``horizon_rounds`` price the cost-aware grouping as PolicyAssignment
    says), then compare allocation with maximum power and frequency."""
    alloc_cfg = alloc_cfg or AllocationConfig()
    grouping = GroupingConfig(rule, threshold_samples_per_s or GroupingConfig.capability_threshold_samples_per_s)
    fraction = MEDIAN_THRESHOLD_FRACTION if threshold_samples_per_s is None else None
    cfg = PolicyConfig(
        grouping, work, tx_power_control_db=tx_power_control_db, allocation=alloc_cfg,
        threshold_fraction_of_median=fraction, horizon_rounds=horizon_rounds,
    )  # fmt: skip
    setup = PolicyAssignment(cfg, airtime=airtime, local_samples=local_samples).round_work(ues)
    groups = setup.groups
    result = compare(setup.work, deadline_factors, alloc_cfg)
    result.update(
        grouping_rule=rule,
        threshold_samples_per_s=setup.threshold_samples_per_s,
        snap_to_steps=alloc_cfg.snap_to_steps,
        tx_power_control_db=tx_power_control_db,
        groups={g.ue_id: {"mode": str(g.mode), "reason": g.reason} for g in groups},
        work={"samples_per_round": work.samples_per_round, "update_bytes": work.update_bytes},
    )
    return result


def capability_repeatability(
    pairs: int = 2,
    repeats: int = 7,
    clock: Callable[[], float] | None = None,
    block_s: float = DEFAULT_BLOCK_S,
    progress: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Measure the host's throughput ``pairs`` times back to back (``clock`` None: the UE's clock); report each,
    the relative spread, the clock used and the wall time each measurement took (warm-up included).
    ``progress()`` is called after each measurement."""
    rates, seconds, last = [], [], None
    for _ in range(pairs):
        start = time.perf_counter()
        last = measure_host(repeats, clock, block_s)
        seconds.append(time.perf_counter() - start)
        rates.append(last.samples_per_s)
        progress()
    return {
        "samples_per_s": rates,
        "relative_spread": (max(rates) - min(rates)) / statistics.median(rates),
        "blocks_per_measurement": repeats,
        "block_s": block_s,
        "passes_per_block": last.passes_per_block if last else 0,
        "clock": last.clock if last else None,
        "wall_s_per_measurement": seconds,
    }
