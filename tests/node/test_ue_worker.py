"""The UE's training step runs in its worker thread: hub + BS + 2 UEs as processes, each UE's step replaced
(inside its process) by a slow or failing one. A step far longer than 3 heartbeat intervals keeps the UE
registered and still uploads; a step that raises is logged with its traceback and only that round is
skipped; a ROUND_END that arrives while the worker trains means nothing is uploaded for that round, and the
next round runs. Every process is killed in ``finally``."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

from testbed.node.training import PlaceholderBs, placeholder_upload
from tests.node.node_helpers import NodeRig

MODEL_BYTES, SEED, UPLOAD_BYTES = 3000, 11, 1500
HEARTBEAT_S = 0.3  # NodeRig's BS: a UE silent for 3 intervals (0.9 s) is declared gone
DEADLINE_S = 5.0
SLOW_STEP_S = 2.0  # ue-1's step in every round: over 6 heartbeat intervals
LATE_STEP_S = DEADLINE_S + 1.0  # ue-2's step in round 2: still training at ROUND_END

# Source run in a UE process before the CLI: wraps the placeholder step with ``{behaviour}``.
PATCH = """
import time
from testbed.node import training
_step = training.PlaceholderUe.upload_bytes
def upload_bytes(self, round_no, model, assign, local_steps=None, link=None):
{behaviour}
    return _step(self, round_no, model, assign, local_steps, link)
training.PlaceholderUe.upload_bytes = upload_bytes
"""
# Pure Python: holds the GIL except at the interpreter's switch interval (unlike torch ops, which release it).
SPIN = f"""
end = time.monotonic() + {SLOW_STEP_S}
while time.monotonic() < end:
    pass
"""
FAULTS = f"""
if round_no == 1:
    raise RuntimeError("injected fault in the training step")
if round_no == 2:
    time.sleep({LATE_STEP_S})
"""


def patched(behaviour: str) -> str:
    return PATCH.format(behaviour=textwrap.indent(behaviour.strip(), "    "))


def upload_sha(round_no: int, ue: str) -> str:
    model = PlaceholderBs(MODEL_BYTES, SEED).model_bytes(round_no)
    return hashlib.sha256(placeholder_upload(model, ue, UPLOAD_BYTES)).hexdigest()


def test_slow_failing_and_overtaken_training_steps_in_the_worker(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    try:
        rig.start_hub()
        bs = rig.start_bs(num_rounds=3, min_ues=2, deadline_s=DEADLINE_S, min_fraction=0.5, round_gap_s=0.1,
                          model_size_bytes=MODEL_BYTES, seed=SEED)  # fmt: skip
        slow = rig.start_ue(1, UPLOAD_BYTES, preamble=patched(SPIN))
        faulty = rig.start_ue(2, UPLOAD_BYTES, preamble=patched(FAULTS))
        assert bs.wait_exit(120) == 0, bs.tail()
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == [1, 2, 3]
        # rounds 1 and 2: only the slow UE's upload (ue-2 failed, then was overtaken); round 3: both
        assert [(r["outcome"], r["done"]) for r in rounds] == [
            ("partial", ["ue-1"]), ("partial", ["ue-1"]), ("complete", ["ue-1", "ue-2"])
        ]  # fmt: skip
        for r in rounds:
            assert r["participants"] == ["ue-1", "ue-2"], r
            assert {ue: u["sha256"] for ue, u in r["uploads"].items()} == {ue: upload_sha(r["round"], ue)
                                                                           for ue in r["done"]}  # fmt: skip
        # nobody was declared gone: the loops kept heartbeating while their workers spun, slept or failed
        assert not [e for e in bs.events() if e.get("event") in ("ue_gone", "ue_left")]
        for ue in (slow, faulty):  # until the BS's BYE at its exit, after the last ROUND_END
            names = [e.get("event") for e in ue.events()]
            last_end = max(i for i, name in enumerate(names) if name == "round_ended")
            assert "bs_gone" not in names[:last_end], ue.tail()
        trained = [e for e in slow.events() if e.get("event") == "trained"]
        assert [e["round"] for e in trained] == [1, 2, 3] and all(e["compute_time_s"] > 0 for e in trained)
        # ue-2: round 1's exception logged with its traceback, round 2's late result discarded, never uploaded
        failed = next(e for e in faulty.events() if e.get("level") == "error")
        assert failed["msg"] == "round 1: the training step failed; skipping the round", failed
        assert "RuntimeError: injected fault in the training step" in failed["exc"]
        discarded = [e for e in faulty.events() if e.get("event") == "job_discarded" and e["kind"] == "train"]
        assert [(e["round"], e["ran"]) for e in discarded] == [(2, True)]
        ended = {e["round"]: e["uploaded"] for e in faulty.events() if e.get("event") == "round_ended"}
        assert ended == {2: False, 3: True}  # round 1 was forgotten when its step failed
        assert [e["round"] for e in faulty.events() if e.get("event") == "uplink_done"] == [3]
        for ue in (slow, faulty):
            assert ue.stop() == 0, ue.tail()
    finally:
        rig.close()
