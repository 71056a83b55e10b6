"""Resource allocation: per UE, the CPU frequency and uplink TX power that meet the round deadline at the
least energy, within the UE's maximum frequency, maximum power and energy budget.

Model (testbed/learning/cost.py, shared with the virtual clock): compute time C/f and energy kappa*C*f^2 for
C = samples * cycles_per_sample cycles; radio energy P * airtime. For a split of the deadline T into upload
time t_u and compute time T - t_u the optimum has closed forms:

- frequency: f = C / (T - t_u), raised to f_min and snapped UP to the next cpufreq step (energy grows with f,
  so the slowest frequency that meets the deadline is the cheapest; snapping up keeps the deadline);
- power: an MCS whose upload fits t_u, sent at the least power reaching its SNR + margin (more power at the
  same MCS buys nothing); the least power for the needed rate is that of the slowest MCS that fits.

Upload time and airtime come from the link's one model (testbed/link/airtime.py, ``AllocationConfig.airtime``):
the upload lasts whole TDMA cycles of the shared medium (``upload_s``), the radio spends energy on the UE's own
bursts (``airtime_s``), expected ARQ repeats included.

The one-dimensional search over the split is exact and finite: the cheapest upload that fits t_u changes only
at MCS airtimes while compute energy rises with t_u, so the optimum is t_u = airtime of some MCS m, and the
energy is min over m of [P(m) * t_air(m) + kappa * C * f*(T - t_air(m))^2]; every reachable MCS (at most 8)
is evaluated. An analog upload (semantic symbols) has a fixed airtime and needs the least
power reaching its target SNR. ``shortest_deadline_s`` bisects for the shortest deadline all UEs can meet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from testbed.errors import PolicyError
from testbed.learning.cost import compute_cycles, compute_energy_j, compute_time_s, radio_energy_j
from testbed.link.airtime import NOTHING, LinkAirtime, Transfer
from testbed.link.messages import ChannelReport
from testbed.phy.numerology import PhyConfig
from testbed.policy.cpufreq import FrequencyTable
from testbed.policy.link_budget import validate_channel

# Bisection stops when the bracket is this fraction of the deadline (1e-4 of a 10 s round is 1 ms).
_BISECTION_REL_TOL = 1e-4
_TIME_REL_TOL = 1e-9


@dataclass(frozen=True)
class DigitalUpload:
    """Bytes sent with a coded MCS (gradients, raw samples)."""

    payload_bytes: int


@dataclass(frozen=True)
class AnalogUpload:
    """Complex semantic symbols sent in analog frames; needs at least ``min_snr_db`` at the BS."""

    num_symbols: int
    min_snr_db: float


@dataclass(frozen=True)
class RoundWork:
    """What a UE must do in one round: process ``compute_samples`` samples, each costing ``cycle_fraction`` of
    a full training step's cycles (1 for forward + backward, less for an encoder forward), and upload ``upload``."""

    compute_samples: int
    upload: DigitalUpload | AnalogUpload
    cycle_fraction: float = 1.0

    def __post_init__(self) -> None:
        sizes = {"compute_samples": self.compute_samples}
        if isinstance(self.upload, DigitalUpload):
            sizes["payload_bytes"] = self.upload.payload_bytes
        else:
            sizes["num_symbols"] = self.upload.num_symbols
            if not math.isfinite(self.upload.min_snr_db):
                raise PolicyError(f"analog upload min_snr_db={self.upload.min_snr_db!r} must be finite")
        for name, value in sizes.items():
            if not (isinstance(value, int) and value >= 0):
                raise PolicyError(f"round work {name}={value!r} must be an integer >= 0")
        if not (math.isfinite(self.cycle_fraction) and 0 < self.cycle_fraction <= 1):
            raise PolicyError(f"round work cycle_fraction={self.cycle_fraction!r} must be in (0, 1]")

    def cycles(self, cycles_per_sample: float) -> float:
        """CPU cycles of this work on a UE needing ``cycles_per_sample`` per full training step."""
        return compute_cycles(self.compute_samples, cycles_per_sample * self.cycle_fraction)


@dataclass(frozen=True)
class UeResources:
    """What the allocator knows of one UE: its CPU, its power model, its radio limits and its uplink."""

    ue_id: str
    frequency_table: FrequencyTable
    cycles_per_sample: float
    kappa_j_per_cycle_hz2: float
    min_tx_power_dbm: float
    max_tx_power_dbm: float
    energy_budget_j: float
    channel: ChannelReport
    tx_draw_offset_db: float = 0.0  # the radio's draw while transmitting above its RF output (cost.py)

    def __post_init__(self) -> None:
        for name in ("cycles_per_sample", "kappa_j_per_cycle_hz2", "energy_budget_j"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise PolicyError(f"UE {self.ue_id!r}: {name}={value!r} must be finite and > 0")
        if not (math.isfinite(self.min_tx_power_dbm) and self.min_tx_power_dbm <= self.max_tx_power_dbm < math.inf):
            raise PolicyError(
                f"UE {self.ue_id!r}: TX power range {self.min_tx_power_dbm!r}..{self.max_tx_power_dbm!r} dBm must be "
                "finite and ordered"
            )
        validate_channel(self.ue_id, self.channel)


@dataclass(frozen=True)
class AllocationConfig:
    """``snap_to_steps`` False treats a stepped CPU as continuous (an idealised bound); True (default) snaps up
    to the cpufreq steps as a board must. ``airtime``: the link's model of the shared medium the UEs upload
    over (MCS thresholds, frames, TDMA slots; default: one UE on the default medium)."""

    snap_to_steps: bool = True
    airtime: LinkAirtime = field(default_factory=lambda: LinkAirtime(PhyConfig(), 1))


@dataclass(frozen=True)
class UeAllocation:
    """One UE's operating point for a round and what it costs (seconds, joules)."""

    ue_id: str
    cpu_freq_hz: float
    tx_power_dbm: float
    mcs: str | None  # None for an analog upload or nothing to upload
    compute_time_s: float
    airtime_s: float  # the UE's own bursts (radio energy)
    upload_s: float  # until the upload is complete: whole TDMA cycles
    compute_energy_j: float
    radio_energy_j: float
    energy_budget_j: float

    @property
    def round_time_s(self) -> float:
        return self.compute_time_s + self.upload_s

    @property
    def energy_j(self) -> float:
        return self.compute_energy_j + self.radio_energy_j

    @property
    def within_budget(self) -> bool:
        return self.energy_j <= self.energy_budget_j


def _upload_options(ue: UeResources, work: RoundWork, cfg: AllocationConfig) -> list[tuple[float, Transfer]]:
    """(TX power dBm, upload) for every way the UE can upload within its power range: each MCS the link's
    chooser may use, at the least power that reaches its threshold."""
    up, air = work.upload, cfg.airtime
    if isinstance(up, AnalogUpload):
        if up.num_symbols == 0:
            return [(ue.max_tx_power_dbm, NOTHING)]  # nothing planned; an unplanned send goes at full power
        power = max(ue.channel.power_for_snr_dbm(up.min_snr_db), ue.min_tx_power_dbm)
        if power > ue.max_tx_power_dbm:
            return []
        return [(power, air.upload(0, None, analog_symbols=up.num_symbols))]
    if up.payload_bytes == 0:
        return [(ue.max_tx_power_dbm, NOTHING)]  # nothing planned; an unplanned send goes at full power
    options = []
    for mcs in air.mcs.candidates:
        power = max(ue.channel.power_for_snr_dbm(air.mcs.required_snr_db(mcs)), ue.min_tx_power_dbm)
        if power <= ue.max_tx_power_dbm:
            options.append((power, air.transfer(up.payload_bytes, mcs, ue.channel.snr_db_at(power))))
    return options


def frequency_for_compute_time(cycles: float, compute_time_s: float, table: FrequencyTable, snap: bool) -> float:
    """Closed form: the least frequency finishing ``cycles`` within ``compute_time_s`` (PolicyError if none)."""
    if cycles == 0:
        return table.min_hz
    if compute_time_s <= 0:
        raise PolicyError(f"no time left to compute {cycles:.3g} cycles (compute_time_s={compute_time_s:.3g})")
    freq = cycles / compute_time_s
    if snap:
        return table.snap_up(freq)
    if freq > table.max_hz * (1 + _TIME_REL_TOL):
        raise PolicyError(f"{freq / 1e6:.1f} MHz needed, above the maximum {table.max_hz / 1e6:.1f} MHz")
    return min(max(freq, table.min_hz), table.max_hz)


def evaluate(
    ue: UeResources,
    work: RoundWork,
    cpu_freq_hz: float,
    tx_power_dbm: float,
    mcs: str | None,
    airtime_s: float,
    upload_s: float,
) -> UeAllocation:
    """Time and energy of one operating point, from the shared cost model."""
    cycles_per_sample = ue.cycles_per_sample * work.cycle_fraction
    return UeAllocation(
        ue_id=ue.ue_id,
        cpu_freq_hz=cpu_freq_hz,
        tx_power_dbm=tx_power_dbm,
        mcs=mcs,
        compute_time_s=compute_time_s(work.compute_samples, cycles_per_sample, cpu_freq_hz),
        airtime_s=airtime_s,
        upload_s=upload_s,
        compute_energy_j=compute_energy_j(
            work.compute_samples, cycles_per_sample, cpu_freq_hz, ue.kappa_j_per_cycle_hz2
        ),
        radio_energy_j=radio_energy_j(tx_power_dbm, airtime_s, ue.tx_draw_offset_db),
        energy_budget_j=ue.energy_budget_j,
    )


def max_performance(ue: UeResources, work: RoundWork, cfg: AllocationConfig) -> UeAllocation:
    """The operating point without allocation: maximum frequency, maximum power and the fastest MCS it allows."""
    up, air = work.upload, cfg.airtime
    snr = ue.channel.snr_db_at(ue.max_tx_power_dbm)
    if isinstance(up, DigitalUpload) and up.payload_bytes:
        if not air.mcs.usable(snr):
            raise PolicyError(
                f"UE {ue.ue_id!r}: uplink SNR {snr:.1f} dB at maximum power is below the most robust MCS; it cannot "
                "upload digitally (send it to a centralized group)"
            )
        sent = air.upload(up.payload_bytes, snr)
    elif isinstance(up, AnalogUpload) and up.num_symbols:
        sent = air.upload(0, None, analog_symbols=up.num_symbols)
    else:
        sent = NOTHING
    return evaluate(ue, work, ue.frequency_table.max_hz, ue.max_tx_power_dbm, sent.mcs, sent.on_air_s, sent.elapsed_s)


def allocate_ue(ue: UeResources, work: RoundWork, deadline_s: float, cfg: AllocationConfig) -> UeAllocation:
    """Least-energy operating point meeting ``deadline_s``; PolicyError saying why when none exists."""
    if not (math.isfinite(deadline_s) and deadline_s > 0):
        raise PolicyError(f"deadline_s={deadline_s!r} must be finite and > 0")
    options = _upload_options(ue, work, cfg)
    if not options:
        raise PolicyError(
            f"UE {ue.ue_id!r}: uplink SNR {ue.channel.snr_db_at(ue.max_tx_power_dbm):.1f} dB at maximum power "
            "cannot carry the upload"
        )
    cycles = work.cycles(ue.cycles_per_sample)
    best: UeAllocation | None = None
    for power, sent in options:
        try:
            freq = frequency_for_compute_time(
                cycles, deadline_s - sent.elapsed_s, ue.frequency_table, cfg.snap_to_steps
            )
        except PolicyError:
            continue
        point = evaluate(ue, work, freq, power, sent.mcs, sent.on_air_s, sent.elapsed_s)
        if point.round_time_s <= deadline_s * (1 + _TIME_REL_TOL) and (best is None or point.energy_j < best.energy_j):
            best = point
    if best is None:
        fastest = max_performance(ue, work, cfg).round_time_s
        raise PolicyError(
            f"UE {ue.ue_id!r} cannot finish within deadline_s={deadline_s:.3g}: even at maximum frequency and power "
            f"it needs {fastest:.3g} s"
        )
    if not best.within_budget:
        raise PolicyError(
            f"UE {ue.ue_id!r} needs at least {best.energy_j:.3g} J to meet deadline_s={deadline_s:.3g}, above its "
            f"energy budget of {ue.energy_budget_j:.3g} J"
        )
    return best


@dataclass(frozen=True)
class RoundAllocation:
    """Every UE's allocation for one round at ``deadline_s``."""

    deadline_s: float
    allocations: tuple[UeAllocation, ...]

    @property
    def total_energy_j(self) -> float:
        return sum(a.energy_j for a in self.allocations)

    @property
    def round_time_s(self) -> float:
        return max((a.round_time_s for a in self.allocations), default=0.0)


def allocate_round(
    ues: Sequence[tuple[UeResources, RoundWork]], deadline_s: float, cfg: AllocationConfig
) -> RoundAllocation:
    """Allocate every UE at one deadline; PolicyError naming each UE that cannot meet it and why."""
    allocations, failures = [], []
    for ue, work in ues:
        try:
            allocations.append(allocate_ue(ue, work, deadline_s, cfg))
        except PolicyError as exc:
            failures.append(str(exc))
    if failures:
        raise PolicyError(
            f"{len(failures)} UE(s) cannot meet deadline_s={deadline_s:.3g} (see shortest_deadline_s, or move them to "
            "a centralized group): " + "; ".join(failures)
        )
    return RoundAllocation(deadline_s, tuple(allocations))


def _feasible(ues: Sequence[tuple[UeResources, RoundWork]], deadline_s: float, cfg: AllocationConfig) -> bool:
    try:
        allocate_round(ues, deadline_s, cfg)
    except PolicyError:
        return False
    return True


def shortest_deadline_s(ues: Sequence[tuple[UeResources, RoundWork]], cfg: AllocationConfig) -> float:
    """Bisection for the shortest deadline every UE meets within its budget (energy falls as the deadline
    grows, and the time constraint only loosens, so feasibility is monotone in the deadline)."""
    if not ues:
        raise PolicyError("no UEs to allocate")
    hi = max(max_performance(ue, work, cfg).round_time_s for ue, work in ues)
    lo = 0.0
    # Longer deadlines lower the frequency; once every UE could run at f_min the energy cannot fall further.
    limit = hi
    for ue, work in ues:
        cycles = work.cycles(ue.cycles_per_sample)
        options = _upload_options(ue, work, cfg)
        longest_air = max((sent.elapsed_s for _, sent in options), default=0.0)
        limit = max(limit, cycles / ue.frequency_table.min_hz + longest_air)
    while not _feasible(ues, hi, cfg):
        if hi >= limit:
            try:
                allocate_round(ues, limit, cfg)
            except PolicyError as exc:
                raise PolicyError(
                    "no deadline is feasible: some UE exceeds its energy budget even at its most frugal operating "
                    f"point or cannot upload at all: {exc}"
                ) from exc
        lo, hi = hi, min(2 * hi, limit)
    while hi - lo > _BISECTION_REL_TOL * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _feasible(ues, mid, cfg) else (mid, hi)
    return hi
