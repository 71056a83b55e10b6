"""``testbed policy``: benchmarks of the policy layer (resource allocation energy, capability repeatability).
Training with the policy's schemes is ``testbed compare`` (the same engine and code path as the baselines)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from testbed.cli._output import Progress, add_json_flag, emit, format_table

CAPABILITY_PAIRS = 2  # measurements back to back: their spread is the figure


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
    bench.add_argument(
        "--rule", default="joint", choices=["joint", "joint_snr", "capability", "channel"], help="grouping rule"
    )
    bench.add_argument(
        "--deadline-factors",
        type=float,
        nargs="+",
        default=None,
        help="deadlines as multiples of the max-performance round time (default 1.0 1.2 1.5 2.0; 1.0: the round "
        "may not get longer; 1.2: the policy's default deadline factor)",
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

    cap = sub.add_parser("capability", help="measure the host's training throughput twice; report the spread")
    cap.add_argument("--repeats", type=int, default=7, help="timed blocks per measurement (the fastest block counts)")
    cap.add_argument(
        "--block-s", type=float, default=None, help="least time per timed block, s (default 0.07; 0: one pass)"
    )
    cap.add_argument("--threads", type=int, default=1, help="torch threads (as testbed train; 1 is fastest here)")
    cap.add_argument(
        "--clock",
        choices=["ue", "thread", "cpu", "wall"],
        default="ue",
        help="'ue': the clock a UE uses (thread CPU time with 1 torch thread, else wall); 'thread': this thread's "
        "CPU time; 'cpu': process CPU time; 'wall': wall time",
    )
    add_json_flag(cap)
    cap.set_defaults(func=_capability)


def _learning_scenario(spec: str, continuous: bool) -> tuple[list[Any], Any, str]:
    """UEs, policy inputs (work sizes, allocation config, airtime, samples per UE, horizon) and a description of
    a testbed/experiment scenario, taken from the engine that trains it (so the bench groups as training does)."""
    from testbed.experiment.engine import Engine
    from testbed.experiment.scenario import DEFAULT_SCENARIO, load_scenario

    scenario = load_scenario(DEFAULT_SCENARIO if spec == "default" else spec)
    engine = Engine(scenario, "fedavg_all")
    inputs = engine.policy_inputs
    inputs = dataclasses.replace(
        inputs, allocation=dataclasses.replace(inputs.allocation, snap_to_steps=not continuous)
    )
    deadline = f"fedavg_deadline {scenario.run.deadline_s:g} s"
    return engine.profiles, inputs, f"scenario {scenario.name!r} (testbed/experiment; {deadline})"


def _profiles_inputs(pi4: float, continuous: bool) -> tuple[list[Any], Any]:
    """UEs and policy inputs of the profiles scenario (bench.py), priced with the learning clock's airtime."""
    from testbed.experiment.airtime import LinkModel, PhyAirtime
    from testbed.experiment.schemes import PolicyInputs
    from testbed.policy import bench as b
    from testbed.policy.allocation import AllocationConfig
    from testbed.policy.work import codec_work_sizes

    alloc = AllocationConfig(snap_to_steps=not continuous)
    airtime = PhyAirtime(
        alloc.phy, LinkModel(alloc.phy.max_payload_bytes, alloc.analog_frame_symbols, alloc.mcs_margin_db)
    )
    ues = b.profile_scenario(pi4)
    inputs = PolicyInputs(
        work=codec_work_sizes(raw_block_samples=b.PROFILE_RAW_BLOCK_SAMPLES),
        allocation=alloc,
        airtime=airtime,
        local_samples={u.name: b.PROFILE_LOCAL_SAMPLES for u in ues},
        horizon_rounds=b.PROFILE_HORIZON_ROUNDS,
    )
    return ues, inputs


def _bench(args: argparse.Namespace) -> int:
    from testbed.policy import bench as b

    with Progress("policy bench", 2, unit="steps") as bar:  # the scenario, then grouping and allocation
        if args.scenario == "profiles":
            if args.measure:
                from testbed.policy.profiles import default_profiles

                bar.note("measuring this host's codec training throughput")
                profiles = default_profiles()
                pi4 = b.measure_host().samples_per_s * profiles.speed_scale("pi_4")
                source = "measured on this host"
            else:
                pi4 = args.pi4_samples_per_s or b.REFERENCE_PI4_SAMPLES_PER_S
                source = "reference figure"
            ues, inputs = _profiles_inputs(pi4, args.continuous)
            power_db = b.PLUTO_POWER_CONTROL_DB
            described = f"profiles scenario, Pi 4 at {pi4:.0f} samples/s ({source})"
        else:
            bar.note(f"building scenario {args.scenario!r} (data set, partition, airtime)")
            ues, inputs, described = _learning_scenario(args.scenario, args.continuous)
            power_db = 0.0
        bar.update()
        result = _allocate(args, b, ues, inputs, power_db)
        bar.update()
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


def _allocate(args: argparse.Namespace, b: Any, ues: list[Any], inputs: Any, power_db: float) -> dict[str, Any]:
    """Group ``ues`` and compare the allocation with maximum power at the requested deadlines."""
    return b.run_allocation_bench(
        ues,
        inputs.work,
        threshold_samples_per_s=args.threshold_samples_per_s,
        rule=args.rule,
        deadline_factors=args.deadline_factors or b.DEADLINE_FACTORS,
        tx_power_control_db=power_db if args.tx_power_control_db is None else args.tx_power_control_db,
        alloc_cfg=inputs.allocation,
        airtime=inputs.airtime,
        local_samples=inputs.local_samples,
        horizon_rounds=inputs.horizon_rounds,
    )


def _capability(args: argparse.Namespace) -> int:
    import time

    import torch

    from testbed.policy.bench import capability_repeatability
    from testbed.policy.capability import DEFAULT_BLOCK_S

    torch.set_num_threads(max(1, args.threads))
    clock = {"ue": None, "thread": time.thread_time, "cpu": time.process_time, "wall": time.perf_counter}[args.clock]
    block_s = DEFAULT_BLOCK_S if args.block_s is None else args.block_s
    with Progress("policy capability", CAPABILITY_PAIRS, unit="measurements") as bar:
        result = capability_repeatability(CAPABILITY_PAIRS, args.repeats, clock, block_s, progress=bar.update)
    result.update(threads=args.threads, clock_option=args.clock)

    def human(r: dict[str, Any]) -> str:
        a, b = r["samples_per_s"]
        return f"host codec training: {a:.0f} and {b:.0f} samples/s; spread {100 * r['relative_spread']:.1f}%"

    emit(result, as_json=args.json, human=human)
    return 0
