"""Single-core throughput of the OFDM modem: TX (modulate) and full RX (demodulate) per MCS.

RX is timed on realistic buffers: several 1000-byte frames back to back with short gaps, AWGN everywhere at
20 dB or 6 dB above the MCS's reference if that is higher (so every frame is decoded), found and decoded by
``demodulate`` (sync, estimation, equalization, demapping, decoding, CRC). Figures are the median of
``repeats`` timed runs after one warm-up run (numba compilation, caches), timed in CPU seconds of this
process: on the shared 2-core machine wall time also counts other processes' turns, CPU time does not
(the run is single-threaded, so CPU time is the time on one core). Wall-clock figures are reported too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from testbed.channel import Awgn
from testbed.experiment.phylab.ber import ideal_snr_db
from testbed.experiment.phylab.targets import RX_MSPS_16QAM_1_2, TX_MSPS, check
from testbed.phy import MCS_TABLE, OfdmModem

BENCH_SNR_DB = 20.0
BENCH_MARGIN_DB = 6.0  # above the 10%-PER reference, where every frame decodes
RX_TARGET_MCS = "16qam-1/2"  # issue 2 names the RX speed target at this MCS


@dataclass(frozen=True)
class BenchConfig:
    """What ``testbed phy bench`` times."""

    mcs: tuple[str, ...] = tuple(MCS_TABLE)
    frames_per_buffer: int = 8
    payload_bytes: int = 1000
    gap_samples: int = 400
    repeats: int = 7
    seed: int = 1


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median (CPU, wall) seconds of ``fn()`` over ``repeats`` runs, after one untimed warm-up run."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def bench_mcs(modem: OfdmModem, mcs: str, cfg: BenchConfig, rng: np.random.Generator) -> dict:
    """TX and RX Msamples/s of one MCS, and how many of the frames in the RX buffer decoded."""
    payloads = [rng.bytes(cfg.payload_bytes) for _ in range(cfg.frames_per_buffer)]
    bursts = [modem.modulate(p, mcs=mcs, seq=i) for i, p in enumerate(payloads)]
    tx_samples = sum(b.size for b in bursts)
    tx_cpu, tx_wall = median_seconds(
        lambda: [modem.modulate(p, mcs=mcs, seq=i) for i, p in enumerate(payloads)], cfg.repeats
    )
    gap = np.zeros(cfg.gap_samples, np.complex64)
    buf = np.concatenate([part for b in bursts for part in (gap, b)] + [gap])
    snr_db = max(BENCH_SNR_DB, ideal_snr_db(mcs, cfg.payload_bytes) + BENCH_MARGIN_DB)
    buf = Awgn(snr_db, rng, occupied_fraction=modem.cfg.occupied_fraction)(buf)
    decoded = sum(f.crc_ok and f.payload in payloads for f in modem.demodulate(buf))
    rx_cpu, rx_wall = median_seconds(lambda: modem.demodulate(buf), cfg.repeats)
    return {
        "tx_msps": tx_samples / max(tx_cpu, 1e-9) / 1e6,
        "rx_msps": buf.size / max(rx_cpu, 1e-9) / 1e6,
        "tx_msps_wall": tx_samples / tx_wall / 1e6,
        "rx_msps_wall": buf.size / rx_wall / 1e6,
        "snr_db": snr_db,
        "frames": cfg.frames_per_buffer,
        "frames_decoded": decoded,
        "rx_buffer_samples": buf.size,
    }


def run_bench(modem: OfdmModem, cfg: BenchConfig, progress: Callable[[str], None]) -> dict:
    """{mcs: {tx_msps, rx_msps, ...}, "targets": {...}, "config": {...}} on one core."""
    import numba
    import scipy.fft

    numba.set_num_threads(1)
    rng = np.random.default_rng(cfg.seed)
    result: dict = {}
    with scipy.fft.set_workers(1):
        for mcs in cfg.mcs:
            result[mcs] = bench_mcs(modem, mcs, cfg, rng)
            row = result[mcs]
            progress(f"{mcs:13s} TX {row['tx_msps']:7.1f}  RX {row['rx_msps']:6.2f} Msamples/s")
    tx_min = min(result[m]["tx_msps"] for m in cfg.mcs) if cfg.mcs else None
    rx_target = result.get(RX_TARGET_MCS, {}).get("rx_msps")
    result["targets"] = {
        "tx_msps_min_over_mcs": check(tx_min, TX_MSPS, ">="),
        f"rx_msps[{RX_TARGET_MCS}]": check(rx_target, RX_MSPS_16QAM_1_2, ">="),
    }
    result["config"] = {
        "snr_db": f"max({BENCH_SNR_DB:g}, reference + {BENCH_MARGIN_DB:g})",
        "timing": "median CPU seconds of this process (wall-clock figures in *_wall)",
        "frames_per_buffer": cfg.frames_per_buffer,
        "payload_bytes": cfg.payload_bytes,
        "repeats": cfg.repeats,
        "threads": 1,
        "sample_rate_hz": modem.cfg.sample_rate_hz,
    }
    return result
