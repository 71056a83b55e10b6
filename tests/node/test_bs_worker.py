"""The BS's training step (``consume``) runs in its worker thread: hub + BS + 2 UEs as processes, the BS's
step replaced (inside its process) by a slow, a failing, a normal and again a slow one. A step far longer
than 3 heartbeat intervals leaves every UE registered and the next round starts only after its record; a
step that raises is logged with its traceback, its round recorded as failed, and the next round runs;
SIGTERM during a step waits for it and records its round. Every process is killed in ``finally``."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path
from typing import Any

from testbed.node.training import PlaceholderBs, placeholder_upload
from tests.node.node_helpers import NodeRig

MODEL_BYTES, SEED, UPLOAD_BYTES = 3000, 13, 1500
HEARTBEAT_S = 0.3  # NodeRig's BS: a UE declares the BS gone after 3 silent intervals (0.9 s)
SLOW_STEP_S = 2.0  # round 1: over 6 heartbeat intervals
STOP_STEP_S = 2.5  # round 4: still running when the test sends SIGTERM

# Source run in the BS process before the CLI: wraps the placeholder's consume with ``{behaviour}``.
PATCH = """
import time
from testbed.node import training
_consume = training.PlaceholderBs.consume
def consume(self, round_no, uploads, analog):
{behaviour}
    return _consume(self, round_no, uploads, analog)
training.PlaceholderBs.consume = consume
"""
# Round 1 spins in pure Python: it holds the GIL but for the switch interval (torch ops would release it).
STEPS = f"""
if round_no == 1:
    end = time.monotonic() + {SLOW_STEP_S}
    while time.monotonic() < end:
        pass
if round_no == 2:
    raise RuntimeError("injected fault in the BS training step")
if round_no == 4:
    time.sleep({STOP_STEP_S})
"""


def upload_sha(round_no: int, ue: str) -> str:
    model = PlaceholderBs(MODEL_BYTES, SEED).model_bytes(round_no)
    return hashlib.sha256(placeholder_upload(model, ue, UPLOAD_BYTES)).hexdigest()


def first(events: list[dict[str, Any]], name: str, round_no: int) -> int:
    """Index of the first ``name`` event of round ``round_no`` in ``events``."""
    return next(i for i, e in enumerate(events) if e.get("event") == name and e.get("round") == round_no)


def test_slow_failing_and_stopped_training_steps_in_the_bs_worker(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    try:
        rig.start_hub()
        preamble = PATCH.format(behaviour=textwrap.indent(STEPS.strip(), "    "))
        bs = rig.start_bs(preamble=preamble, num_rounds=0, min_ues=2, deadline_s=20.0, round_gap_s=0.1,
                          model_size_bytes=MODEL_BYTES, seed=SEED)  # fmt: skip
        ues = [rig.start_ue(i, UPLOAD_BYTES) for i in (1, 2)]
        bs.wait_event(lambda e: e.get("event") == "round_ended" and e["round"] == 4, 90, "ROUND_END of round 4")
        assert bs.stop() == 0, bs.tail()  # SIGTERM while round 4's step sleeps
        rounds = rig.rounds()
        assert [(r["round"], r["outcome"]) for r in rounds] == [(1, "complete"), (2, "failed"), (3, "complete"),
                                                                (4, "complete")]  # fmt: skip
        for r in rounds:
            assert r["participants"] == r["done"] == ["ue-1", "ue-2"], r
            assert r["uploads"] == {ue: {"bytes": UPLOAD_BYTES, "sha256": upload_sha(r["round"], ue)}
                                    for ue in r["done"]}  # fmt: skip
        assert rounds[0]["consume_s"] >= SLOW_STEP_S and rounds[3]["consume_s"] >= STOP_STEP_S  # 4: waited for
        assert rounds[1]["error"] == "RuntimeError: injected fault in the BS training step"
        assert all("error" not in r for r in rounds if r["round"] != 2)
        events = bs.events()
        failed = next(e for e in events if e.get("level") == "error")
        assert failed["msg"] == "round 2: the training step failed; the round is recorded as failed", failed
        assert "RuntimeError: injected fault in the BS training step" in failed["exc"]
        for n in (1, 2, 3):  # ROUND_END, then the step, then the record, and only then the next round
            assert (
                first(events, "round_ended", n)
                < first(events, "round_finished", n)
                < first(events, "round_started", n + 1)
            )
        assert not [e for e in events if e.get("event") == "round_started" and e["round"] > 4]
        assert next(e for e in events if e.get("event") == "stopped")["rounds"] == 4
        # nobody was declared gone: the BS's loop kept heartbeating while its worker spun, failed or slept
        assert not [e for e in events if e.get("event") in ("ue_gone", "ue_left")]
        for ue in ues:  # until the BS's BYE at its exit, after round 4's ROUND_END
            names = [e.get("event") for e in ue.events()]
            assert "bs_gone" not in names[: first(ue.events(), "round_ended", 4)], ue.tail()
            assert ue.stop() == 0, ue.tail()
    finally:
        rig.close()
