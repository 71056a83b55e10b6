"""Wall time per round of the in-process engine against the number of UEs, per executor (issue 15 item 4).

The scenario is the default one with its ten UEs repeated (names ue0, ue1, ...; the same boards, SNRs and TX
powers in turn) up to ``--ues`` each, over the model medium, and a TDMA cycle just long enough for one
frame per slot (the shared medium's rule: every UE gets a slot each cycle). Each (UEs, executor) pair runs in a
fresh interpreter (``--child``) so its peak RSS is its own: it builds the engine (start-up, not counted), runs
``--rounds`` rounds of ``--scheme`` and reports per round the wall time and this process's CPU time (round 0
apart: nothing is measured yet, every UE at the lowest MCS; of the later rounds the least disturbed one, the
machine being shared; CPU time does not count Ray's worker processes), the peak RSS, the RSS the engine's
build added per UE, and with ``--profile`` where the time of the rounds after the first went (cProfile:
cumulative seconds of the UE jobs, their local training, wire encoding/decoding, the BS's joint update,
evaluation, the medium; the rest is the event loop and the node cores). cProfile sees the calling thread only:
under an executor, what the jobs do on their fibers (encoding, the BS's update and evaluation) shows inside
``ue_jobs`` and not apart.

The "before" figure comes from running this same script on a checkout of the old tree (it uses only what
both have: an old tree has no executor module and measures its one per-UE loop as "embedded").

Usage: python benchmarks/engine_scale.py [--ues 10 50 200] [--executors embedded ray] [--rounds 3]
       [--scheme fedavg_all] [--seed 1] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from testbed.cli._output import emit, format_table

ROOT = Path(__file__).resolve().parents[1]
#: cProfile entries per category: (label, function names whose cumulative time it is; the first one found counts)
CATEGORIES = (
    ("ue_jobs", ("_run_jobs", "_start_job")),
    ("local_training", ("train_local", "distributed")),
    ("wire", ("encode_update", "decode_model")),
    ("bs_update", ("finish_round",)),
    ("evaluation", ("evaluate_classes",)),
    ("medium", ("exchange",)),
)


def scenario(num_ues: int, seed: int) -> Any:
    """The default scenario with its UEs repeated up to ``num_ues``, model medium, a cycle that fits them."""
    import msgspec

    from testbed.experiment.scenario import DEFAULT_SCENARIO, Scenario
    from testbed.link.tdma import min_cycle_samples

    raw = tomllib.loads(DEFAULT_SCENARIO.read_text())
    base = raw["ues"]
    raw["ues"] = [{**base[i % len(base)], "name": f"ue{i}"} for i in range(num_ues)]
    raw["medium"]["kind"] = "model"
    raw["training"]["seed"] = seed
    frame = 40_720  # a 1500-byte bpsk-1/2 frame, the longest burst (default.toml's [link] comment)
    slots = min_cycle_samples(num_ues + 1, raw["link"]["guard_samples"], frame)
    raw["link"]["tdma_cycle_samples"] = max(raw["link"]["tdma_cycle_samples"], slots)
    return msgspec.convert(raw, Scenario)


def child(num_ues: int, executor_name: str, rounds: int, scheme: str, seed: int, profile: bool) -> dict[str, Any]:
    """One (UEs, executor) pair in this process (see the module docstring)."""
    import cProfile
    import pstats
    import resource
    import time

    import torch

    from testbed.experiment.engine import Engine

    torch.set_num_threads(1)

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    executor = None
    if executor_name != "embedded" or _has_executors():
        from testbed.experiment.executor import build_executor

        executor = build_executor(executor_name, num_cpus=2 if executor_name == "ray" else None)
    sc = scenario(num_ues, seed)
    before = rss_mb()
    t0 = time.perf_counter()
    engine = Engine(sc, scheme, executor=executor) if executor is not None else Engine(sc, scheme)
    engine.start()
    startup_s = time.perf_counter() - t0
    built = rss_mb()
    times, cpu, accuracy = [], [], []
    prof = cProfile.Profile()
    for r in range(rounds):
        if profile and r == 1:
            prof.enable()
        t, c = time.perf_counter(), time.process_time()
        metrics = engine.step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        accuracy.append(metrics["accuracy"])
    prof.disable()
    if executor is not None:
        executor.close()
    out: dict[str, Any] = {
        "ues": num_ues,
        "executor": executor_name,
        "scheme": scheme,
        "startup_s": startup_s,
        "round0_s": times[0],
        "round_s": min(times[1:]) if rounds > 1 else None,  # the least disturbed round >= 1 on a shared machine
        "round_cpu_s": min(cpu[1:]) if rounds > 1 else None,  # this process's CPU (Ray's workers not in it)
        "round_times_s": times,
        "round_cpu_times_s": cpu,
        "accuracy": accuracy,
        "peak_rss_mb": rss_mb(),
        "build_mb_per_ue": (built - before) / num_ues,
    }
    if profile and rounds > 1:
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        per_name: dict[str, float] = {}
        for (_file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items():
            per_name[name] = per_name.get(name, 0.0) + ct
        spent = {}
        for label, names in CATEGORIES:
            found = [per_name[n] for n in names if n in per_name]
            spent[label] = found[0] / (rounds - 1) if found else None
        out["profile_s_per_round"] = spent
    return out


def _has_executors() -> bool:
    try:
        import testbed.experiment.executor  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def run_child(args: argparse.Namespace, num_ues: int, executor: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--ues", str(num_ues), "--executors", executor, "--rounds",
           str(args.rounds), "--scheme", args.scheme, "--seed", str(args.seed)] + (["--profile"] if args.profile
                                                                                 else [])  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ues": num_ues, "executor": executor, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def human(result: dict[str, Any]) -> str:
    header = ["UEs", "executor", "start-up s", "round 0 s", "round s", "round CPU s", "peak RSS MB", "MB per UE",
              "error"]  # fmt: skip
    rows = [[r["ues"], r["executor"], r.get("startup_s"), r.get("round0_s"), r.get("round_s"), r.get("round_cpu_s"),
             r.get("peak_rss_mb"), r.get("build_mb_per_ue"), r.get("error")] for r in result["runs"]]  # fmt: skip
    text = format_table(header, rows)
    for r in result["runs"]:
        if r.get("profile_s_per_round"):
            parts = ", ".join(f"{k} {v:.2f}" for k, v in r["profile_s_per_round"].items() if v is not None)
            text += f"\n{r['ues']} UEs, {r['executor']}: s per round: {parts}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ues", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--executors", nargs="+", default=["embedded", "ray"])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per run (>= 2: round 0 is reported apart)")
    parser.add_argument("--scheme", default="fedavg_all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="where the time of rounds >= 1 went (cProfile)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.ues[0], args.executors[0], args.rounds, args.scheme, args.seed, args.profile)))
        return
    runs = [run_child(args, n, ex) for n in args.ues for ex in args.executors]
    emit({"scheme": args.scheme, "rounds": args.rounds, "seed": args.seed, "runs": runs}, as_json=args.json,
         human=human)  # fmt: skip


if __name__ == "__main__":
    main()
