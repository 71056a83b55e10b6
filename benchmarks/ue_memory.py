"""Peak RSS of the UE agent's side per training mode (issue 14, "Fits the smallest board"): a Pi Zero 2 W has
512 MB of RAM.

Each mode runs in a fresh interpreter: import what the UE daemon imports (the UE core, its training step,
the radio pump's modem), build the UE of firmware_cfg/nodes/local/ue-1.toml's [training] (its shard of the
dataset), take one broadcast model (its bytes) and compute one upload in that mode; report the process's
peak RSS (ru_maxrss) after the imports and after the step, and what torch's import alone costs.

Usage: python benchmarks/ue_memory.py [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from testbed.cli._output import emit, format_table

ROOT = Path(__file__).resolve().parents[1]
MODES = ("distributed", "centralized_decoder", "centralized_full", "idle")

PROBE = """
import json, resource, sys
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss_mb()
import torch
after_torch = rss_mb()
from testbed.learning import wire
from testbed.node.config import UeConfig, load_config
from testbed.node.ue_core import UeCore
from testbed.node.training import LearningUe
from testbed.phy import OfdmModem
from testbed.control.protocol import Assign
from testbed.link.messages import SlotGrant
from testbed.mode import Mode
cfg = load_config("firmware_cfg/nodes/local/ue-1.toml", UeConfig)
OfdmModem(cfg.air.phy)
imported = rss_mb()
ue = LearningUe.for_shard(cfg.training, cfg.ue.ue_id, cfg.ue.shard)
mode = Mode(sys.argv[1])
model = wire.encode_model(ue.model, 0, {"ue-1": (0, cfg.training.raw_block_samples)})  # a broadcast's bytes
assign = Assign(mode, 0, 0.0, 1.0, 1.5e9, "qpsk-1/2", SlotGrant(1, 0, 1000))
upload = ue.upload_bytes(0, model, assign)
print(json.dumps({"mode": mode.value, "python_mb": base, "torch_import_mb": after_torch - base,
                  "after_import_mb": imported, "peak_mb": rss_mb(), "upload_bytes": len(upload)}))
"""


def measure(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args()
    runs = [measure(m) for m in MODES]
    emit({"board_ram_mb": 512, "runs": runs}, as_json=args.json, human=_human)


def _human(result: dict) -> str:
    head = ["mode", "python MB", "torch import MB", "after imports MB", "peak MB", "upload bytes"]
    rows = [[r["mode"], r["python_mb"], r["torch_import_mb"], r["after_import_mb"], r["peak_mb"], r["upload_bytes"]]
            for r in result["runs"]]  # fmt: skip
    return f"UE agent peak RSS per mode (a Pi Zero 2 W has {result['board_ram_mb']} MB)\n" + format_table(head, rows)


if __name__ == "__main__":
    main()
