"""Gradient compression measured, not assumed: bytes and error of float16 and 8-bit block quantization on a
gradient-like array (Gaussian with heavy-tailed outliers), and how error feedback keeps the error of the
running sum over many rounds at one quantization step instead of letting it grow.

Usage: python benchmarks/link_compress.py [--values 1000000] [--rounds 50] [--json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from testbed.cli._output import emit, format_table
from testbed.link.compress import ErrorFeedback, Float16Codec, Int8Codec, measure


def gradient(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,) float32: N(0, 1e-3^2) with 0.1% outliers 100x larger (a typical layer gradient's shape)."""
    g = rng.normal(0.0, 1e-3, n).astype(np.float32)
    idx = rng.choice(n, n // 1000, replace=False)
    g[idx] *= 100.0
    return g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    g = gradient(rng, args.values)
    codecs = {"float16": Float16Codec(), "int8/256": Int8Codec(256), "int8/64": Int8Codec(64)}
    rows = []
    for name, codec in codecs.items():
        t0 = time.perf_counter()
        fig = measure(codec, g)
        wall_s = time.perf_counter() - t0
        grads = [gradient(rng, args.values // 10) for _ in range(args.rounds)]
        truth = np.sum(grads, axis=0)
        ef = ErrorFeedback(codec)
        plain = sum(codec.decode(codec.encode(x)) for x in grads)
        fed = sum(ef.decode(ef.encode(x)) for x in grads)
        rows.append(
            {
                "codec": name,
                "raw_bytes": fig.raw_bytes,
                "coded_bytes": fig.coded_bytes,
                "ratio": fig.ratio,
                "relative_rms_error": fig.relative_rms_error,
                "max_abs_error": fig.max_abs_error,
                "encode_decode_s": wall_s,
                "sum_rel_rms_error_plain": _rel_rms(plain, truth),
                "sum_rel_rms_error_ef": _rel_rms(fed, truth),
            }
        )
    emit({"values": args.values, "rounds": args.rounds, "codecs": rows}, as_json=args.json, human=_human)


def _rel_rms(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x - ref) ** 2)) / np.sqrt(np.mean(ref**2)))


def _human(r: dict) -> str:
    head = ["codec", "bytes", "ratio", "rel RMS err", "max abs err", f"sum of {r['rounds']}: plain", "with EF"]
    rows = [
        [
            c["codec"],
            c["coded_bytes"],
            c["ratio"],
            f"{c['relative_rms_error']:.2e}",
            f"{c['max_abs_error']:.2e}",
            f"{c['sum_rel_rms_error_plain']:.2e}",
            f"{c['sum_rel_rms_error_ef']:.2e}",
        ]
        for c in r["codecs"]
    ]
    return format_table(head, rows)


if __name__ == "__main__":
    main()
