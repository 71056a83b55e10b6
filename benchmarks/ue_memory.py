"""Peak RSS of the UE agent per training mode (issue 14, "Fits the smallest board"): a Pi Zero 2 W has 512 MB of
RAM; the targets are 200 MB in the centralized modes and 400 MB in distributed mode, default codec.

Each mode runs the real processes of the README's one-machine recipe (firmware_cfg/nodes/local/: the default
scenario's [training], MNIST and the default codec) in a temporary directory: ``testbed hub``, ``testbed bs``
with [assign] fixing ue-1's mode, and ``testbed ue`` for ue-1, for ``--rounds`` rounds; the UE's figure is its
process's peak RSS (ru_maxrss from wait4) after the BS finished and the UE stopped. In the centralized modes
the UE runs as on a board installed without the learn extra (importing torch fails: the blocker of
tests/test_packaging.py), so it is EncoderUe (testbed/node/encoder_ue.py); distributed and split learning
(its encoder backward) need torch. ``--import-only`` instead measures what importing the UE daemon's modules
costs in a fresh interpreter, with and without torch.

Usage: nice python benchmarks/ue_memory.py [--modes raw,symbols,distributed,split] [--rounds 2] [--ue-threads 1]
       [--with-torch] [--import-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from testbed.cli._output import emit, format_table

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "firmware_cfg" / "nodes" / "local"
BOARD_RAM_MB = 512
TARGET_MB = {"raw": 200, "symbols": 200, "distributed": 400, "split": 400}
# benchmark mode -> (the mode [assign] fixes, split learning on, UE runs without torch)
MODES = {
    "raw": ("centralized_full", False, True),
    "symbols": ("centralized_decoder", False, True),
    "distributed": ("distributed", False, False),
    "split": ("centralized_decoder", True, False),
}
WITHOUT_TORCH = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
"""
CLI = "import sys; from testbed.cli import main; sys.exit(main())"
IMPORTS = """
import json, resource, sys
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss_mb()
import testbed.cli.node, testbed.node.ue, testbed.node.encoder_ue, testbed.node.pump
if sys.argv[1] == "torch":  # what the daemon imports where torch is installed
    import testbed.node.training
print(json.dumps({"python_mb": base, "imports_mb": rss_mb(), "torch_loaded": "torch" in sys.modules}))
"""


def _toml(table: dict) -> str:
    """Scalars, strings, lists and inline tables of one section, as TOML lines (json spells them alike)."""

    def value(v: object) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v)

    return "\n".join(f"{k} = {value(v)}" for k, v in table.items())


def _configs(run: Path, hub: str, mode: str, split: bool, rounds: int) -> None:
    bs, ue = (tomllib.loads((LOCAL / f).read_text()) for f in ("bs.toml", "ue-1.toml"))
    training = dict(bs["training"], split_gradient=split)
    plain = "security = { plaintext = true }"
    (run / "bs.toml").write_text(
        f'[bs]\nues = {{ "ue-1" = 1 }}\nstate_dir = "state"\nmin_ues = 1\nnum_rounds = {rounds}\n'
        f'[air]\n{_toml(bs["air"])}\n[radio]\nendpoint = {json.dumps(hub)}\nnode = "bs"\n'
        f'[control]\nbind_endpoint = "tcp://127.0.0.1:*"\n{plain}\n'
        f'[assign]\nmodes = {{ "ue-1" = "{mode}" }}\n[training]\n{_toml(training)}\n'
    )
    ue_training = dict(ue["training"], split_gradient=split)
    (run / "ue.toml").write_text(
        f'[ue]\n{_toml(ue["ue"])}\n[air]\n{_toml(ue["air"])}\n[radio]\nendpoint = {json.dumps(hub)}\nnode = "ue-1"\n'
        f'[control]\nserver_endpoint = "{{bs}}"\n{plain}\n[training]\n{_toml(ue_training)}\n'
    )


def _spawn(run: Path, name: str, args: list[str], preamble: str = "", threads: int = 1) -> subprocess.Popen:
    """One process with ``threads`` compute threads (OMP_NUM_THREADS, as ``testbed sim`` runs its nodes; 0: the
    libraries' default, one per core)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1") | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = (run / f"{name}.log").open("w")
    return subprocess.Popen([sys.executable, "-c", preamble + CLI, *args], cwd=run, env=env, text=True,
                            stdout=subprocess.PIPE if name == "hub" else out, stderr=out)  # fmt: skip


def _wait_event(log: Path, event: str, timeout_s: float) -> dict:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for line in log.read_text().splitlines() if log.exists() else []:
            if line.startswith("{") and json.loads(line).get("event") == event:
                return json.loads(line)
        time.sleep(0.2)
    raise RuntimeError(f"no {event!r} in {log} within {timeout_s} s:\n{log.read_text()[-2000:]}")


def measure(name: str, rounds: int, ue_threads: int = 1, with_torch: bool = False) -> dict:
    """One mode: hub, BS and UE as processes; the UE's peak RSS and what the BS recorded. ``with_torch``: the UE
    can import torch in every mode (a board with the learn extra installed)."""
    mode, split, torch_free = MODES[name]
    torch_free = torch_free and not with_torch
    with tempfile.TemporaryDirectory(prefix=f"ue-memory-{name}-") as tmp:
        run = Path(tmp)
        procs = [_spawn(run, "hub", ["hub", "--scenario", str(ROOT / "firmware_cfg/nodes/scenario.toml"), "--json"])]
        try:
            hub = json.loads(procs[0].stdout.readline())["endpoint"]
            _configs(run, hub, mode, split, rounds)
            procs.append(_spawn(run, "bs", ["bs", "--config", "bs.toml"]))
            endpoint = _wait_event(run / "bs.log", "ready", 120)["endpoint"]
            (run / "ue.toml").write_text((run / "ue.toml").read_text().replace("{bs}", endpoint))
            ue = _spawn(run, "ue", ["ue", "--config", "ue.toml"], WITHOUT_TORCH if torch_free else "", ue_threads)
            procs.append(ue)
            if procs[1].wait(timeout=600) != 0:
                raise RuntimeError(f"the BS failed:\n{(run / 'bs.log').read_text()[-2000:]}")
            ue.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(ue.pid, 0)
            ue.returncode = os.waitstatus_to_exitcode(status)
            records = [json.loads(line) for line in (run / "state" / "rounds.jsonl").read_text().splitlines()]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
    done = [r for r in records if r.get("outcome") == "complete" and "ue-1" in r.get("done", [])]
    return {
        "mode": name,
        "assigned": mode,
        "split_gradient": split,
        "without_torch": torch_free,
        "rounds_complete": len(done),
        "ue_exit": ue.returncode,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "target_mb": TARGET_MB[name],
    }


def measure_imports() -> list[dict]:
    """The UE daemon's modules imported in a fresh interpreter: as a board without the learn extra, and with torch."""
    runs = []
    for variant in ("no torch", "torch"):
        code = (WITHOUT_TORCH if variant == "no torch" else "") + IMPORTS
        done = subprocess.run([sys.executable, "-c", code, variant], cwd=ROOT, capture_output=True, text=True,
                              check=True)  # fmt: skip
        runs.append({"variant": variant, **json.loads(done.stdout.strip().splitlines()[-1])})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per mode (split learning's backward: >= 2)")
    parser.add_argument(
        "--ue-threads",
        type=int,
        default=1,
        help="the UE's OMP_NUM_THREADS (1, as testbed sim runs it; 0: one per core)",
    )
    parser.add_argument("--with-torch", action="store_true", help="the UE can import torch in every mode")
    parser.add_argument("--import-only", action="store_true", help="only the cost of importing the UE's modules")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args()
    if args.import_only:
        emit({"board_ram_mb": BOARD_RAM_MB, "imports": measure_imports()}, as_json=args.json, human=_human_imports)
        return
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"--modes: unknown {unknown}; use {', '.join(MODES)}")
    runs = []
    for m in modes:
        runs.append(measure(m, args.rounds, args.ue_threads, args.with_torch))
        print(f"{m}: {runs[-1]['peak_rss_mb']} MB", file=sys.stderr)
    result = {"board_ram_mb": BOARD_RAM_MB, "rounds": args.rounds, "ue_threads": args.ue_threads, "runs": runs}
    emit(result, as_json=args.json, human=_human)


def _human(result: dict) -> str:
    head = ["mode", "assigned", "without torch", "rounds complete", "UE peak RSS MB", "target MB"]
    rows = [[r["mode"], r["assigned"] + (" + split" if r["split_gradient"] else ""), r["without_torch"],
             r["rounds_complete"], r["peak_rss_mb"], r["target_mb"]] for r in result["runs"]]  # fmt: skip
    return f"UE agent peak RSS per mode (a Pi Zero 2 W has {result['board_ram_mb']} MB)\n" + format_table(head, rows)


def _human_imports(result: dict) -> str:
    head = ["variant", "python MB", "after the UE's imports MB", "torch loaded"]
    rows = [[r["variant"], r["python_mb"], r["imports_mb"], r["torch_loaded"]] for r in result["imports"]]
    return "Importing the UE daemon's modules\n" + format_table(head, rows)


if __name__ == "__main__":
    main()
