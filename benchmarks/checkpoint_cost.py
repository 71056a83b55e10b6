"""What a verified checkpoint costs per round: size of one checkpoint of a scenario's run, time to write it
(temp file, fsync, rename, fsync of the directory) and to load and verify it (manifest, SHA-256, weights_only,
every tensor finite). Median of --repeats after one round of the scheme.

Usage: PYTHONPATH=. python benchmarks/checkpoint_cost.py [--scheme policy] [--repeats 9] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from testbed.cli._output import emit, format_table
from testbed.experiment.engine import CHECKPOINT_FILE, Engine
from testbed.experiment.scenario import DEFAULT_SCENARIO, load_scenario
from testbed.learning.checkpoint import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", default="policy", help="scheme whose run is checkpointed")
    parser.add_argument("--repeats", type=int, default=9, help="timed saves and loads (median reported)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        engine = Engine(load_scenario(DEFAULT_SCENARIO), args.scheme, out)
        engine.start()
        engine.step()  # writes the first checkpoint
        save_s, load_s = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            engine._checkpoint()
            save_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            load_checkpoint(out / CHECKPOINT_FILE, engine._identity())
            load_s.append(time.perf_counter() - start)
        size = (out / CHECKPOINT_FILE).stat().st_size
    result = {
        "scheme": args.scheme,
        "checkpoint_bytes": size,
        "save_ms_median": 1e3 * statistics.median(save_s),
        "load_verify_ms_median": 1e3 * statistics.median(load_s),
        "repeats": args.repeats,
    }
    emit(result, as_json=args.json, human=lambda r: format_table(["", "value"], [[k, v] for k, v in r.items()]))


if __name__ == "__main__":
    main()
