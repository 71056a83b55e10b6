"""Capability measurement on the UE: how fast it trains, at what CPU frequency, with how much memory and energy.

Throughput is timed forward + backward passes of the model on a batch: warm-up until the pass time settles,
then the rate of the fastest of several timed blocks of equal work, each long enough (DEFAULT_BLOCK_S) that
the scheduler's noise averages out within it. Interference (another process, a busy SMT sibling, a slow phase
of a virtual machine) only ever slows a block down, so the least-disturbed block is the board's own rate (the
reason timeit reports the minimum time); on this host it halved the spread between two measurements against
the median block (docs/policy.md). The UE and the
benchmark time the codec through one function, ``measure_codec_throughput``; the UE's clock is
``measurement_clock()`` (thread CPU time when torch computes in the calling thread, else wall time). On a
board the figure is taken at the current cpufreq frequency. In simulation all UEs share the host, so the
host's figure is scaled by the UE profile's relative speed (profiles.toml) and by f / f_max, which keeps
heterogeneity reproducible.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from testbed.errors import PolicyError
from testbed.learning.codec_config import compute_fractions
from testbed.link.messages import ChannelReport
from testbed.policy.allocation import UeResources
from testbed.policy.cpufreq import CpuFreqControl, FrequencyTable
from testbed.policy.link_budget import TX_DRAW_OFFSET_RANGE_DB, TX_POWER_RANGE_DBM
from testbed.policy.profiles import UeProfile

if TYPE_CHECKING:
    import torch

    from testbed.learning.codec import SemanticCodec
    from testbed.learning.encoder_np import NumpyEncoder

MEMINFO_PATH = Path("/proc/meminfo")
POWER_SUPPLY_ROOT = Path("/sys/class/power_supply")
_UWH_TO_J = 3.6e-3  # power_supply energy_now is in micro-watt-hours (Linux ABI sysfs-class-power)

# Bounds outside which a report is absurd (not a real board): refused, never trusted.
MIN_SAMPLES_PER_S, MAX_SAMPLES_PER_S = 1e-3, 1e7
CPU_FREQ_RANGE_HZ = (1e6, 1e10)
MAX_MEMORY_BYTES = 2**44  # 16 TiB
MIN_ENERGY_BUDGET_J, MAX_ENERGY_BUDGET_J = 1e-6, 1e7
KAPPA_RANGE = (1e-32, 1e-22)


@dataclass(frozen=True)
class ThroughputMeasurement:
    """Training throughput of one model on one batch: the fastest timed block and every block's rate, in
    samples/s; each block ran ``passes_per_block`` passes after ``warmup_passes`` untimed ones, timed by
    ``clock`` (its function name)."""

    samples_per_s: float
    repeats_samples_per_s: tuple[float, ...]
    batch_size: int
    passes_per_block: int = 1
    warmup_passes: int = 0
    clock: str = "custom"  # the clock's name (thread_time, perf_counter, ...) when known


# A timed block lasts at least this long: a ~2 ms pass timed alone swings by tens of percent with the
# scheduler on a shared 2-core host; 7 blocks of 70 ms (about 0.5 s) agree within a few percent (docs/policy.md).
DEFAULT_BLOCK_S = 0.07
SETTLE_TOLERANCE = 0.1  # warm-up ends when a pass takes within 10% of the one before ...
MIN_WARMUP_S = 0.3  # ... and warm-up has lasted this long (a fresh process runs slower for its first ~0.5 s here)
MAX_WARMUP_S = 1.0  # ... or when warm-up has taken this long (a machine that never settles)
# Noise variance of the channel between encoder and decoder in a timed codec pass: any finite value costs
# the same; 0.1 (10 dB SNR at unit symbol power) is a typical training point.
CODEC_PASS_NOISE_VAR = 0.1


def _timed_pass(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: Callable) -> None:
    model.zero_grad(set_to_none=True)
    loss_fn(model(inputs), targets).backward()


def _elapsed(start: float, stop: float) -> float:
    elapsed = stop - start
    if not elapsed > 0:
        raise PolicyError(f"timed pass took {elapsed!r} s; the clock must be monotonic and advancing")
    return elapsed


def measure_throughput(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    warmup: int = 2,
    repeats: int = 7,
    block_s: float = DEFAULT_BLOCK_S,
    min_warmup_s: float = MIN_WARMUP_S,
    max_warmup_s: float = MAX_WARMUP_S,
    clock: Callable[[], float] = time.perf_counter,
) -> ThroughputMeasurement:
    """Training throughput of ``model`` on ``inputs`` (batch first), steady enough to compare two runs.

    Warm-up: at least ``warmup`` passes (one at least, to size the blocks) and ``min_warmup_s``, continued
    until a pass takes within SETTLE_TOLERANCE of the one before, but never past ``max_warmup_s``. Then
    ``repeats`` timed blocks of equal work, each about ``block_s`` long (passes per block from the settled pass
    time; 0 gives one pass per block); the figure is the fastest block's rate (module docstring). Parameters
    are untouched (no optimizer step), gradients are cleared afterwards and the train/eval mode is restored."""
    if warmup < 0 or repeats < 1 or not block_s >= 0 or not 0 <= min_warmup_s <= max_warmup_s:
        raise PolicyError(
            f"warmup={warmup} must be >= 0, repeats={repeats} >= 1, block_s={block_s} >= 0 and "
            f"0 <= min_warmup_s={min_warmup_s} <= max_warmup_s={max_warmup_s}; pass numbers in those ranges"
        )
    batch = int(inputs.shape[0]) if inputs.ndim else 0
    if batch < 1:
        raise PolicyError(f"inputs must hold a batch of at least one sample, got shape {tuple(inputs.shape)}")
    was_training = model.training
    model.train()
    try:
        return time_passes(
            lambda: _timed_pass(model, inputs, targets, loss_fn), batch, warmup=warmup, repeats=repeats,
            block_s=block_s, min_warmup_s=min_warmup_s, max_warmup_s=max_warmup_s, clock=clock,
        )  # fmt: skip
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)


def time_passes(
    run_pass: Callable[[], object],
    batch: int,
    *,
    warmup: int = 2,
    repeats: int = 7,
    block_s: float = DEFAULT_BLOCK_S,
    min_warmup_s: float = MIN_WARMUP_S,
    max_warmup_s: float = MAX_WARMUP_S,
    clock: Callable[[], float] = time.perf_counter,
) -> ThroughputMeasurement:
    """Samples/s of ``run_pass`` (one pass over ``batch`` samples): the warm-up and timed blocks of
    ``measure_throughput``, for any pass (torch's training pass, or numpy's encoder forward)."""
    times: list[float] = []
    while len(times) < max(warmup, 1):
        start = clock()
        run_pass()
        times.append(_elapsed(start, clock()))
    while sum(times) < max_warmup_s and (
        sum(times) < min_warmup_s
        or abs(times[-1] - times[-2] if len(times) > 1 else math.inf) > SETTLE_TOLERANCE * times[-1]
    ):
        start = clock()
        run_pass()
        times.append(_elapsed(start, clock()))
    passes = max(1, math.ceil(block_s / statistics.median(times[-3:])))
    rates = []
    for _ in range(repeats):
        start = clock()
        for _ in range(passes):
            run_pass()
        rates.append(batch * passes / _elapsed(start, clock()))
    name = getattr(clock, "__name__", "custom")
    return ThroughputMeasurement(max(rates), tuple(rates), batch, passes, len(times), name)


def measurement_clock() -> Callable[[], float]:
    """The clock a UE times its training with, chosen in the thread that will run the passes.

    ``time.thread_time`` (this thread's CPU time) when torch computes in the calling thread
    (``torch.get_num_threads() == 1``): exact for the pass, blind to the daemon's other threads (a
    ``process_time`` would also count the event loop polling beside the worker) and to other processes on a
    shared host (CPU time spreads 0.4-3.3% between back-to-back measurements here, wall time up to 15%,
    docs/policy.md). With more torch threads, part of every op runs in torch's pool, which thread CPU time
    misses and process CPU time adds up rather than overlaps, so the wall clock (``time.perf_counter``) is the
    only honest one."""
    if "torch" not in sys.modules:  # a UE without torch (numpy's encoder forward): its BLAS may run threads
        return time.perf_counter
    import torch

    return time.thread_time if torch.get_num_threads() == 1 else time.perf_counter


def _measurement_inputs(batch_size: int, clock: Callable[[], float] | None) -> Callable[[], float]:
    """Both measurements' checks: a batch of at least one sample, and ``clock`` or ``measurement_clock()``."""
    if batch_size < 1:
        raise PolicyError(f"batch_size={batch_size} must be >= 1; the UE measures on batches of 32")
    return measurement_clock() if clock is None else clock


def measure_codec_throughput(
    codec: SemanticCodec,
    *,
    batch_size: int = 32,
    repeats: int = 7,
    block_s: float = DEFAULT_BLOCK_S,
    clock: Callable[[], float] | None = None,
    seed: int = 0,
) -> ThroughputMeasurement:
    """Training throughput of ``codec`` in samples/s: what the UE reports and the benchmark validates, so both
    time exactly the same work.

    One pass = encoder, then decoder at noise variance CODEC_PASS_NOISE_VAR, cross-entropy on class scores,
    backward (the pass a distributed UE trains), on a fixed random batch of ``batch_size`` images in [0, 1]
    with random labels drawn from ``seed``; timed by ``measure_throughput`` (warm-up, then the fastest of
    ``repeats`` blocks of about ``block_s``). ``clock`` None: ``measurement_clock()``. The codec's parameters
    and train/eval mode are untouched, its gradients cleared."""
    import torch

    clock = _measurement_inputs(batch_size, clock)
    gen = torch.Generator().manual_seed(seed)
    side, classes = codec.cfg.image_size_px, codec.cfg.num_classes
    images = torch.rand(batch_size, 1, side, side, generator=gen)  # (batch, 1, side, side) float32 in [0, 1]
    labels = torch.randint(0, classes, (batch_size,), generator=gen)  # (batch,) int64 class indices

    class CodecPass(torch.nn.Module):
        """Encoder then decoder's class scores: the codec as one module for ``measure_throughput``."""

        def __init__(self) -> None:
            super().__init__()
            self.codec = codec

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.codec.decoder(self.codec.encoder(x), CODEC_PASS_NOISE_VAR)[0]

    step = CodecPass().train(codec.training)  # so measure_throughput restores the codec's own mode
    loss = torch.nn.functional.cross_entropy
    return measure_throughput(step, images, labels, loss, repeats=repeats, block_s=block_s, clock=clock)


def measure_encoder_throughput(
    encoder: NumpyEncoder,
    *,
    batch_size: int = 32,
    repeats: int = 7,
    block_s: float = DEFAULT_BLOCK_S,
    clock: Callable[[], float] | None = None,
    seed: int = 0,
) -> ThroughputMeasurement:
    """What a UE without torch reports: the rate of numpy's encoder forward (the only work it can do) expressed
    as full training steps, samples/s x the encoder forward's share of a step's cycles (codec_config's
    ``compute_fractions``), so its cycles per sample and the energy of a centralized round (that share of
    them) come out as the cost model counts them. Same warm-up and blocks as ``measure_codec_throughput``."""
    clock = _measurement_inputs(batch_size, clock)
    side = encoder.cfg.image_size_px
    images = np.random.default_rng(seed).random((batch_size, 1, side, side), dtype=np.float32)  # in [0, 1]
    forward = time_passes(lambda: encoder(images), batch_size, repeats=repeats, block_s=block_s, clock=clock)
    share = compute_fractions(encoder.cfg)[0]
    return dataclasses.replace(
        forward,
        samples_per_s=forward.samples_per_s * share,
        repeats_samples_per_s=tuple(r * share for r in forward.repeats_samples_per_s),
    )


def available_memory_bytes(meminfo_path: Path = MEMINFO_PATH) -> int:
    """MemAvailable from /proc/meminfo (kB there), in bytes."""
    try:
        for line in meminfo_path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError) as exc:
        raise PolicyError(f"cannot read MemAvailable from {meminfo_path}: {exc}") from exc
    raise PolicyError(f"{meminfo_path} has no MemAvailable line (Linux >= 3.14 provides it)")


def battery_energy_j(power_supply_root: Path = POWER_SUPPLY_ROOT) -> float | None:
    """Energy left in the first battery (sum of ``energy_now``), in joules; None without a battery."""
    total, found = 0.0, False
    for supply in sorted(power_supply_root.glob("*")):
        try:
            if (supply / "type").read_text().strip() != "Battery":
                continue
            total += float((supply / "energy_now").read_text()) * _UWH_TO_J
            found = True
        except (OSError, ValueError):
            continue
    return total if found else None


@dataclass(frozen=True)
class CapabilityReport:
    """What a UE tells the BS about itself. ``samples_per_s`` is measured at ``cpu_freq_hz``."""

    ue_id: str
    samples_per_s: float
    cpu_freq_hz: float
    frequency_table: FrequencyTable
    available_memory_bytes: int
    energy_budget_j: float
    kappa_j_per_cycle_hz2: float
    min_tx_power_dbm: float
    max_tx_power_dbm: float
    tx_draw_offset_db: float = 0.0  # the radio's draw while transmitting above its RF output (cost.py)

    def validate(self) -> None:
        """Raise PolicyError naming the first negative, zero, NaN or absurd field."""
        bounds = {  # (value, lowest, highest) accepted, inclusive; the lowest are > 0 where zero is meaningless
            "samples_per_s": (self.samples_per_s, MIN_SAMPLES_PER_S, MAX_SAMPLES_PER_S),
            "cpu_freq_hz": (self.cpu_freq_hz, *CPU_FREQ_RANGE_HZ),
            "available_memory_bytes": (self.available_memory_bytes, 1, MAX_MEMORY_BYTES),
            "energy_budget_j": (self.energy_budget_j, MIN_ENERGY_BUDGET_J, MAX_ENERGY_BUDGET_J),
            "kappa_j_per_cycle_hz2": (self.kappa_j_per_cycle_hz2, *KAPPA_RANGE),
            "min_tx_power_dbm": (self.min_tx_power_dbm, *TX_POWER_RANGE_DBM),
            "max_tx_power_dbm": (self.max_tx_power_dbm, *TX_POWER_RANGE_DBM),
            "tx_draw_offset_db": (self.tx_draw_offset_db, *TX_DRAW_OFFSET_RANGE_DB),
        }
        for name, (value, lo, hi) in bounds.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and lo <= value <= hi):
                raise PolicyError(
                    f"capability report of UE {self.ue_id!r}: {name}={value!r} must be finite and in {lo:g}..{hi:g}; "
                    "re-measure on the UE"
                )
        if self.min_tx_power_dbm > self.max_tx_power_dbm:
            raise PolicyError(f"capability report of UE {self.ue_id!r}: min_tx_power_dbm exceeds max_tx_power_dbm")
        table = self.frequency_table
        if not (CPU_FREQ_RANGE_HZ[0] <= table.min_hz and table.max_hz <= CPU_FREQ_RANGE_HZ[1]):
            raise PolicyError(f"capability report of UE {self.ue_id!r}: frequency table {table} outside 1 MHz..10 GHz")
        if not table.min_hz * (1 - 1e-9) <= self.cpu_freq_hz <= table.max_hz * (1 + 1e-9):
            raise PolicyError(
                f"capability report of UE {self.ue_id!r}: cpu_freq_hz={self.cpu_freq_hz:g} is outside its own "
                f"table {table.min_hz:g}..{table.max_hz:g} Hz"
            )

    @property
    def cycles_per_sample(self) -> float:
        """CPU cycles per training sample implied by the measurement (linear in 1/f, cost.py's model)."""
        return self.cpu_freq_hz / self.samples_per_s

    def samples_per_s_at(self, cpu_freq_hz: float) -> float:
        """Throughput the cost model predicts at another frequency."""
        return self.samples_per_s * cpu_freq_hz / self.cpu_freq_hz

    def resources(self, channel: ChannelReport) -> UeResources:
        """The allocator's view of this UE on the uplink ``channel`` (validates both reports)."""
        self.validate()
        return UeResources(
            ue_id=self.ue_id,
            frequency_table=self.frequency_table,
            cycles_per_sample=self.cycles_per_sample,
            kappa_j_per_cycle_hz2=self.kappa_j_per_cycle_hz2,
            min_tx_power_dbm=self.min_tx_power_dbm,
            max_tx_power_dbm=self.max_tx_power_dbm,
            energy_budget_j=self.energy_budget_j,
            channel=channel,
            tx_draw_offset_db=self.tx_draw_offset_db,
        )


def build_report(
    ue_id: str,
    profile: UeProfile,
    measured: ThroughputMeasurement,
    cpufreq: CpuFreqControl,
    *,
    speed_scale: float | None = None,
    energy_budget_j: float | None = None,
    meminfo_path: Path = MEMINFO_PATH,
    power_supply_root: Path = POWER_SUPPLY_ROOT,
) -> CapabilityReport:
    """Turn a measurement into the UE's report.

    On a board (``speed_scale`` None) the measured samples/s stands at the current cpufreq frequency. In
    simulation ``speed_scale`` (ProfileSet.speed_scale) maps the host's figure to the profile's at f_max, then
    f / f_max scales it to the simulated current frequency. Energy budget: ``energy_budget_j`` if given, else the
    profile's, capped by a battery's remaining energy when the host has one. kappa and the TX range come from
    the profile (they need a power meter to measure)."""
    table = cpufreq.table()
    freq = cpufreq.current_frequency_hz()
    rate = measured.samples_per_s
    memory = available_memory_bytes(meminfo_path)
    if speed_scale is not None:
        if not (math.isfinite(speed_scale) and speed_scale > 0):
            raise PolicyError(f"speed_scale={speed_scale!r} must be finite and > 0")
        rate *= speed_scale * freq / table.max_hz
        memory = min(memory, profile.memory_bytes)
    budget = profile.energy_budget_j if energy_budget_j is None else energy_budget_j
    battery = battery_energy_j(power_supply_root)
    if battery is not None:
        budget = min(budget, battery)
    report = CapabilityReport(
        ue_id=ue_id,
        samples_per_s=rate,
        cpu_freq_hz=freq,
        frequency_table=table,
        available_memory_bytes=memory,
        energy_budget_j=budget,
        kappa_j_per_cycle_hz2=profile.kappa_j_per_cycle_hz2,
        min_tx_power_dbm=profile.min_tx_power_dbm,
        max_tx_power_dbm=profile.max_tx_power_dbm,
        tx_draw_offset_db=profile.tx_draw_offset_db,
    )
    report.validate()
    return report
