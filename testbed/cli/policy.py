"""``testbed policy``: benchmarks of the policy layer (resource allocation energy, capability repeatability)."""

from __future__ import annotations

import argparse
from typing import Any

from testbed.cli._output import add_json_flag, emit, format_table

# Mirrors testbed.policy.bench.REFERENCE_PI4_SAMPLES_PER_S without importing torch at parser build time.
REFERENCE_PI4_SAMPLES_PER_S = 2500.0


def register(subparsers: Any) -> None:
    """Add ``testbed policy bench`` and ``testbed policy capability``."""
    parser = subparsers.add_parser("policy", help="policy benchmarks: resource allocation, capability measurement")
    sub = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    sub.required = True

    bench = sub.add_parser("bench", help="energy per round: resource allocation vs every UE at max power/frequency")
    bench.add_argument("--rule", default="joint", choices=["joint", "capability", "channel"], help="grouping rule")
    bench.add_argument(
        "--deadline-factors",
        type=float,
        nargs="+",
        default=[1.0, 1.25, 1.5, 2.0],
        help="deadlines as multiples of the max-performance round time (1.0: the round may not get longer)",
    )
    bench.add_argument(
        "--pi4-samples-per-s",
        type=float,
        default=REFERENCE_PI4_SAMPLES_PER_S,
        help="Pi 4 training throughput that anchors every profile (default: the reference estimate)",
    )
    bench.add_argument("--measure", action="store_true", help="measure this host's throughput instead (noisy)")
    bench.add_argument("--continuous", action="store_true", help="continuous CPU frequency (no cpufreq snapping)")
    add_json_flag(bench)
    bench.set_defaults(func=_bench)

    cap = sub.add_parser("capability", help="measure the host's training throughput twice; report the spread")
    cap.add_argument("--repeats", type=int, default=9, help="timed passes per measurement (median taken)")
    add_json_flag(cap)
    cap.set_defaults(func=_capability)


def _bench(args: argparse.Namespace) -> int:
    from testbed.policy.bench import run_allocation_bench

    pi4 = None if args.measure else args.pi4_samples_per_s
    result = run_allocation_bench(args.deadline_factors, args.rule, pi4, not args.continuous)

    def human(r: dict[str, Any]) -> str:
        rows = [
            [d["deadline_factor"], d["deadline_s"], d["max_power_energy_j"], d["allocated_energy_j"],
             f"{100 * d['energy_saving']:.1f}%", d["all_within_budget"]]
            for d in r["deadlines"]
        ]  # fmt: skip
        groups = "\n".join(f"  {ue}: {g['mode']} ({g['reason']})" for ue, g in r["groups"].items())
        return (
            f"Pi 4 {r['pi4_samples_per_s']:.0f} samples/s ({r['throughput_source']}); rule {r['grouping_rule']}; "
            f"max-performance round {r['max_power_round_time_s']:.3f} s\n{groups}\n"
            + format_table(["deadline x", "deadline s", "max-power J", "allocated J", "saving", "in budget"], rows)
        )

    emit(result, as_json=args.json, human=human)
    return 0


def _capability(args: argparse.Namespace) -> int:
    from testbed.policy.bench import capability_repeatability

    result = capability_repeatability(pairs=2, repeats=args.repeats)

    def human(r: dict[str, Any]) -> str:
        a, b = r["samples_per_s"]
        return f"host codec training: {a:.0f} and {b:.0f} samples/s; spread {100 * r['relative_spread']:.1f}%"

    emit(result, as_json=args.json, human=human)
    return 0
