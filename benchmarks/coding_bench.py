"""Throughput of the PHY coding stages on one core: encoder and Viterbi decoder in Mbit/s, plus the whole
bit-level TX and RX chains (scramble, encode, puncture, interleave, map / demap, deinterleave, depuncture,
decode, descramble) per MCS, also expressed in Msamples/s of the default numerology.

Usage: python benchmarks/coding_bench.py [--info-bits N] [--repeats R] [--clock cpu|wall] [--json]
Figures are medians of R repeats after a warm-up call (numba compiled and cached). The default clock is this
process's CPU time, so other jobs on a shared machine do not inflate it (everything here is single-threaded);
``--clock wall`` measures elapsed time instead.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: no helper threads inflate the CPU clock

import numpy as np  # noqa: E402

from testbed.cli._output import add_json_flag, emit, format_table  # noqa: E402
from testbed.phy.convcode import conv_encode, depuncture, puncture, viterbi_decode  # noqa: E402
from testbed.phy.interleaver import deinterleave, interleave  # noqa: E402
from testbed.phy.layout import TAIL_BITS  # noqa: E402
from testbed.phy.mcs import get_mcs  # noqa: E402
from testbed.phy.modulation import demap_llr, map_bits  # noqa: E402
from testbed.phy.numerology import PhyConfig  # noqa: E402
from testbed.phy.scrambler import scramble  # noqa: E402

CHAIN_MCS = ("bpsk-1/2", "qpsk-1/2", "16qam-1/2", "64qam-3/4")
SEED = 93  # any scrambler seed 1..127


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def _median_s(fn: Callable[[], object], repeats: int, clock: Callable[[], float]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return float(np.median(times))


def _chains(
    cfg: PhyConfig, name: str, n_info: int, rng: np.random.Generator, repeats: int, clock: Callable[[], float]
) -> dict[str, float]:
    """TX and RX bit-level chain throughput for one MCS on whole OFDM symbols."""
    mcs = get_mcs(name)
    n_dbps = mcs.data_bits_per_ofdm_symbol(cfg.num_data)
    n_cbps = mcs.coded_bits_per_ofdm_symbol(cfg.num_data)
    n_sym = -(-(n_info + TAIL_BITS) // n_dbps)
    n_total = n_sym * n_dbps  # info + tail + pad
    info = rng.integers(0, 2, n_info, dtype=np.uint8)
    k = mcs.bits_per_symbol

    def tx() -> np.ndarray:
        data = np.concatenate([scramble(info, SEED), np.zeros(n_total - n_info, np.uint8)])
        coded = puncture(conv_encode(data), mcs.code_rate)
        return map_bits(interleave(coded, n_cbps, k), k)

    symbols = tx()
    noise_var = np.float32(10 ** (-(mcs.ideal_snr_db_per_10pct + 3) / 10))
    noise = rng.normal(scale=np.sqrt(noise_var / 2), size=(symbols.size, 2)).astype(np.float32)
    rx_symbols = symbols + noise.view(np.complex64)[:, 0]

    def rx() -> np.ndarray:
        llrs = deinterleave(demap_llr(rx_symbols, noise_var, k), n_cbps, k)
        mother = depuncture(llrs, mcs.code_rate, 2 * n_total)[: 2 * (n_info + TAIL_BITS)]
        return scramble(viterbi_decode(mother, n_info), SEED)

    if not np.array_equal(rx(), info):
        raise SystemExit(f"{name}: RX chain did not recover the payload 3 dB above its 10% PER point")
    samples_per_bit = cfg.symbol_len / n_dbps
    tx_mbps = n_info / _median_s(tx, repeats, clock) / 1e6
    rx_mbps = n_info / _median_s(rx, repeats, clock) / 1e6
    return {
        "tx_mbps": tx_mbps,
        "tx_msps": tx_mbps * samples_per_bit,
        "rx_mbps": rx_mbps,
        "rx_msps": rx_mbps * samples_per_bit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--info-bits", type=int, default=65_536, help="information bits per block")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="process CPU time or wall time")
    add_json_flag(parser)
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    rng = np.random.default_rng(0)
    n = args.info_bits
    bits = np.concatenate([rng.integers(0, 2, n, dtype=np.uint8), np.zeros(TAIL_BITS, np.uint8)])
    coded = conv_encode(bits)
    llrs = (1.0 - 2.0 * coded + rng.normal(scale=0.8, size=coded.size)).astype(np.float32)
    result = {
        "info_bits": n,
        "repeats": args.repeats,
        "clock": args.clock,
        "encode_mbps": n / _median_s(lambda: conv_encode(bits), args.repeats, clock) / 1e6,
        "viterbi_mbps": n / _median_s(lambda: viterbi_decode(llrs, n), args.repeats, clock) / 1e6,
        "chains": {name: _chains(PhyConfig(), name, n, rng, args.repeats, clock) for name in CHAIN_MCS},
    }

    def human(r: dict) -> str:
        head = f"conv_encode {r['encode_mbps']:.1f} Mbit/s, viterbi_decode {r['viterbi_mbps']:.1f} Mbit/s"
        rows = [[name, c["tx_mbps"], c["tx_msps"], c["rx_mbps"], c["rx_msps"]] for name, c in r["chains"].items()]
        table = format_table(["MCS", "TX Mbit/s", "TX Msamples/s", "RX Mbit/s", "RX Msamples/s"], rows)
        what = f"{r['info_bits']} info bits, median of {r['repeats']}, {r['clock']} clock"
        return f"{head}\nbit-level chains ({what}):\n{table}"

    emit(result, as_json=args.json, human=human)


if __name__ == "__main__":
    main()
