"""``testbed policy``: benchmarks of the policy layer (resource allocation energy, capability repeatability)
and ``testbed policy compare``, which trains the policy's schemes beside the fixed baselines."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from testbed.cli._output import add_json_flag, emit, format_table
from testbed.errors import PolicyError


def register(subparsers: Any) -> None:
    """Add ``testbed policy bench`` and ``testbed policy capability``."""
    parser = subparsers.add_parser("policy", help="policy benchmarks: resource allocation, capability measurement")
    sub = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    sub.required = True

    bench = sub.add_parser("bench", help="energy per round: resource allocation vs every UE at max power/frequency")
    bench.add_argument(
        "--scenario",
        default="default",
        help="'default' (testbed/experiment's default scenario), a scenario TOML path, or 'profiles' "
        "(built from testbed/policy/profiles.toml)",
    )
    bench.add_argument("--rule", default="joint", choices=["joint", "capability", "channel"], help="grouping rule")
    bench.add_argument(
        "--deadline-factors",
        type=float,
        nargs="+",
        default=[1.0, 1.25, 1.5, 2.0],
        help="deadlines as multiples of the max-performance round time (1.0: the round may not get longer)",
    )
    bench.add_argument(
        "--threshold-samples-per-s", type=float, default=None, help="capability threshold (default: half the median UE)"
    )
    bench.add_argument(
        "--tx-power-control-db",
        type=float,
        default=None,
        help="how far below its maximum a UE's TX power may go (default: 0 for a learning scenario, whose "
        "tx_power_dbm includes circuit power; the Pluto's 89.75 dB for 'profiles')",
    )
    bench.add_argument("--pi4-samples-per-s", type=float, default=None, help="'profiles': Pi 4 throughput anchor")
    bench.add_argument("--measure", action="store_true", help="'profiles': measure this host's throughput instead")
    bench.add_argument("--continuous", action="store_true", help="continuous CPU frequency (no cpufreq snapping)")
    add_json_flag(bench)
    bench.set_defaults(func=_bench)

    from testbed.cli.train import add_scenario_args

    cmp = sub.add_parser("compare", help="train the policy and its ablations beside fixed schemes (virtual clock)")
    cmp.add_argument(
        "--schemes",
        nargs="+",
        default=["hybrid", "hfcl", "policy", "policy_no_alloc", "policy_by_capability", "policy_by_channel"],
        help="fixed schemes of testbed/learning/schemes.py and/or policy variants (testbed/policy/assign.py)",
    )
    cmp.add_argument(
        "--threshold-samples-per-s", type=float, default=None, help="capability threshold (default: half the median UE)"
    )
    cmp.add_argument("--good-channel-snr-db", type=float, default=15.0, help="joint rule: raw data above this SNR")
    add_scenario_args(cmp)
    add_json_flag(cmp)
    cmp.set_defaults(func=_compare)

    cap = sub.add_parser("capability", help="measure the host's training throughput twice; report the spread")
    cap.add_argument("--repeats", type=int, default=9, help="timed passes per measurement (median taken)")
    cap.add_argument("--threads", type=int, default=1, help="torch threads (as testbed train; 1 is fastest here)")
    cap.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="wall time, or process CPU time (robust to load)"
    )
    add_json_flag(cap)
    cap.set_defaults(func=_capability)


_IMAGE_DIMS = {"mnist": (28, 10), "digits": (8, 10)}  # image side and classes of the shipped data sets


def _learning_scenario(spec: str, continuous: bool) -> tuple[list[Any], Any, Any, str]:
    """UEs, work sizes and allocation config of a testbed/experiment scenario."""
    from testbed.experiment.scenario import DEFAULT_SCENARIO, load_scenario
    from testbed.policy.assign import codec_work_sizes

    scenario = load_scenario(DEFAULT_SCENARIO if spec == "default" else spec)
    dims = _IMAGE_DIMS.get(scenario.data.dataset)
    if dims is None:
        from testbed.learning.data import load_dataset

        data = load_dataset(scenario.data.dataset)
        dims = (data.image_size_px, data.num_classes)
    codec = scenario.codec_config(*dims)
    rounds = scenario.round_config(codec)
    work = codec_work_sizes(codec, rounds.work, rounds.raw_block_samples)
    alloc = dataclasses.replace(_scenario_allocation(scenario), snap_to_steps=not continuous)
    return scenario.profiles(codec), work, alloc, f"scenario {scenario.name!r} (testbed/experiment)"


def _bench(args: argparse.Namespace) -> int:
    from testbed.policy import bench as b
    from testbed.policy.allocation import AllocationConfig
    from testbed.policy.assign import codec_work_sizes

    if args.scenario == "profiles":
        if args.measure:
            from testbed.policy.profiles import default_profiles

            profiles = default_profiles()
            pi4 = b.measure_host().samples_per_s * profiles.speed_scale("pi_4")
            source = "measured on this host"
        else:
            pi4 = args.pi4_samples_per_s or b.REFERENCE_PI4_SAMPLES_PER_S
            source = "reference figure"
        ues, work = b.profile_scenario(pi4), codec_work_sizes(raw_block_samples=b.PROFILE_RAW_BLOCK_SAMPLES)
        alloc = AllocationConfig(snap_to_steps=not args.continuous)
        power_db = b.PLUTO_POWER_CONTROL_DB
        described = f"profiles scenario, Pi 4 at {pi4:.0f} samples/s ({source})"
    else:
        ues, work, alloc, described = _learning_scenario(args.scenario, args.continuous)
        power_db = 0.0
    result = b.run_allocation_bench(
        ues,
        work,
        threshold_samples_per_s=args.threshold_samples_per_s,
        rule=args.rule,
        deadline_factors=args.deadline_factors,
        tx_power_control_db=power_db if args.tx_power_control_db is None else args.tx_power_control_db,
        alloc_cfg=alloc,
    )
    result["scenario"] = described

    def human(r: dict[str, Any]) -> str:
        rows = [
            [d["deadline_factor"], d["deadline_s"], d["max_power_energy_j"], d["allocated_energy_j"],
             f"{100 * d['energy_saving']:.1f}%", d["all_within_budget"]]
            for d in r["deadlines"]
        ]  # fmt: skip
        groups = "\n".join(f"  {ue}: {g['mode']} ({g['reason']})" for ue, g in r["groups"].items())
        return (
            f"{r['scenario']}; rule {r['grouping_rule']}; max-performance round {r['max_power_round_time_s']:.3f} s\n"
            f"{groups}\n"
            + format_table(["deadline x", "deadline s", "max-power J", "allocated J", "saving", "in budget"], rows)
        )

    emit(result, as_json=args.json, human=human)
    return 0


def _capability(args: argparse.Namespace) -> int:
    import time

    import torch

    from testbed.policy.bench import capability_repeatability

    torch.set_num_threads(max(1, args.threads))
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    result = capability_repeatability(pairs=2, repeats=args.repeats, clock=clock)
    result.update(threads=args.threads, clock=args.clock)

    def human(r: dict[str, Any]) -> str:
        a, b = r["samples_per_s"]
        return f"host codec training: {a:.0f} and {b:.0f} samples/s; spread {100 * r['relative_spread']:.1f}%"

    emit(result, as_json=args.json, human=human)
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Every scheme through testbed/experiment's Engine on the same scenario and seed. Until ``Engine`` accepts a
    scheme object, a policy variant is installed by replacing the engine's ``scheme`` before the first round."""
    import torch

    from testbed.cli._output import progress
    from testbed.cli.train import scenario_from_args
    from testbed.experiment.compare import to_target
    from testbed.experiment.engine import Engine
    from testbed.learning.schemes import SCHEME_NAMES, Scheme
    from testbed.policy.assign import POLICY_VARIANTS, codec_work_sizes, policy_variants

    unknown = [n for n in args.schemes if n not in SCHEME_NAMES and n not in POLICY_VARIANTS]
    if unknown:
        raise PolicyError(f"unknown schemes {unknown}; choose from {', '.join((*SCHEME_NAMES, *POLICY_VARIANTS))}")
    torch.set_num_threads(max(1, args.threads))
    scenario = scenario_from_args(args)
    summaries = {}
    for name in args.schemes:
        engine = Engine(scenario, name if name in SCHEME_NAMES else "hybrid")
        if name in POLICY_VARIANTS:
            rounds_cfg = scenario.round_config(engine.codec_cfg)
            work = codec_work_sizes(engine.codec_cfg, rounds_cfg.work, rounds_cfg.raw_block_samples)
            alloc = _scenario_allocation(scenario)
            variants = policy_variants(work, args.threshold_samples_per_s, alloc, args.good_channel_snr_db)
            engine.scheme = Scheme(name, variants[name])
        history = engine.start()
        for _ in progress(range(scenario.training.rounds), desc=name):
            history.append(engine.step())
        summaries[name] = to_target(history, scenario.training.target_accuracy)
    result = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "target_accuracy": scenario.training.target_accuracy,
        "schemes": summaries,
    }

    def human(r: dict[str, Any]) -> str:
        keys = ["final_accuracy", "time_to_target_s", "energy_to_target_j", "total_time_s", "total_energy_j"]
        rows = [[name, *(s[k] for k in keys)] for name, s in r["schemes"].items()]
        return format_table(
            ["scheme", "final acc", "time to target s", "energy to target J", "time s", "energy J"], rows
        )

    emit(result, as_json=args.json, human=human)
    return 0


def _scenario_allocation(scenario: Any) -> Any:
    """The allocation config matching a testbed/experiment scenario's link (frames, margin, sample rate)."""
    from testbed.phy.numerology import PhyConfig
    from testbed.policy.allocation import AllocationConfig

    link = scenario.link
    return AllocationConfig(
        mcs_margin_db=link.mcs_margin_db,
        phy=PhyConfig(sample_rate_hz=link.sample_rate_hz, max_payload_bytes=link.frame_payload_bytes),
        analog_frame_symbols=link.analog_frame_symbols,
    )
