"""A BS that survives itself: hub + BS + 2 UEs as processes. The BS is SIGKILLed right after round 2's record
(and the record is then taken out, a torn line left, as a kill between the checkpoint and the record would);
restarted on the same state_dir it recovers round 2's record from its checkpoint and continues the same run
at round 3 with the model of round 3 (the
placeholder's model is a function of the round), and the records say which run and which BS session made
them. A damaged checkpoint or one of another config stops the BS at start with one line. Processes are
killed in ``finally``."""

from __future__ import annotations

import hashlib
import random
import signal
import time
from pathlib import Path

import pytest

from testbed.node.bs import STATE_FILE
from testbed.node.training import PlaceholderBs
from tests.node.node_helpers import NodeRig

MODEL_BYTES, SEED, UPLOAD_BYTES = 3000, 17, 1500


def model_sha(round_no: int) -> str:
    return hashlib.sha256(PlaceholderBs(MODEL_BYTES, SEED).model_bytes(round_no)).hexdigest()


def test_a_killed_bs_resumes_its_run_at_the_next_round(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    fields = dict(num_rounds=4, min_ues=2, deadline_s=20.0, round_gap_s=0.3, model_size_bytes=MODEL_BYTES, seed=SEED)
    try:
        rig.start_hub()
        bs = rig.start_bs(**fields)
        ues = [rig.start_ue(i, UPLOAD_BYTES) for i in (1, 2)]
        bs.wait_event(lambda e: e.get("event") == "state_saved" and e["round"] == 2, 90, "round 2's state")
        bs.stop(signal.SIGKILL)
        assert [r["round"] for r in rig.rounds()] == [1, 2]  # nothing of the finished round was lost
        # what a kill between round 2's checkpoint and its record leaves: no line of round 2, a torn one instead
        records = rig.root / "state" / "rounds.jsonl"
        records.write_text(records.read_text().splitlines(keepends=True)[0] + '{"round": 2, "outc')
        again = rig.start_bs(bind_endpoint=rig.bs_endpoint, **fields)  # where the UEs look for it
        assert again.wait_exit(120) == 0, again.tail()  # rounds 3 and 4, then num_rounds is reached
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == [1, 2, 3, 4]
        assert [r["bs_session"] for r in rounds] == [1, 1, 2, 2]
        assert len({r["run_id"] for r in rounds}) == 1 and rounds[0]["run_id"]
        assert [r["model_sha256"] for r in rounds] == [model_sha(n) for n in (1, 2, 3, 4)]
        resumed = next(e for e in again.events() if e.get("event") == "run_resumed")
        assert resumed["next_round"] == 3 and resumed["session"] == 2
        assert [e["round"] for e in again.events() if e.get("event") == "record_recovered"] == [2]
        for ue in ues:
            ue.stop()
    finally:
        rig.close()


def test_a_damaged_or_foreign_checkpoint_stops_the_bs_with_one_line(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=1, mcs="qpsk-1/2")
    try:
        state = rig.root / "state"
        state.mkdir(parents=True, exist_ok=True)
        (state / STATE_FILE).write_bytes(b"not a checkpoint")
        bs = rig.start_bs(num_rounds=1, model_size_bytes=MODEL_BYTES, seed=SEED, wait=False)
        code = bs.wait_exit(60)
        assert code != 0
        errors = [line for line in bs.tail(50).splitlines() if "error" in line.lower()]
        assert any(STATE_FILE in line and "Traceback" not in line for line in errors), bs.tail()
    finally:
        rig.close()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_bs_killed_at_20_random_points_loses_and_repeats_no_round(tmp_path: Path) -> None:
    """SIGKILL the BS at 20 seeded random moments of a running experiment (mid-round, mid-step, between a
    round's checkpoint and its record, at start-up) and start it again on the same state each time: every start
    resumes at the round after the last one recorded, and in the end every round is recorded exactly once, with
    its own model (the placeholder's model is a function of the round)."""
    rng = random.Random(2026)
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    fields = dict(num_rounds=0, min_ues=2, deadline_s=20.0, round_gap_s=0.05, model_size_bytes=MODEL_BYTES, seed=SEED)
    recovered = 0
    try:
        rig.start_hub()
        bs = rig.start_bs(**fields)
        ues = [rig.start_ue(i, UPLOAD_BYTES) for i in (1, 2)]
        bs.wait_event(lambda e: e.get("event") == "state_saved", 120, "a first round")
        for _ in range(20):
            time.sleep(rng.uniform(0.0, 1.5))
            bs.stop(signal.SIGKILL)
            bs = rig.start_bs(bind_endpoint=rig.bs_endpoint, **fields)
            resumed = bs.wait_event(lambda e: e.get("event") in ("run_resumed", "run_started"), 120, "its run")
            assert resumed["event"] == "run_resumed", resumed
            recovered += sum(e.get("event") == "record_recovered" for e in bs.events())
            recorded = [r["round"] for r in rig.rounds()]
            assert resumed["next_round"] == max(recorded) + 1, (resumed, recorded)
        bs.wait_event(lambda e: e.get("event") == "state_saved", 120, "a round after the last start")
        assert bs.stop(signal.SIGTERM) == 0, bs.tail()
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))  # none lost, none repeated
        assert [r["model_sha256"] for r in rounds] == [model_sha(r["round"]) for r in rounds]
        sessions = [r["bs_session"] for r in rounds]  # a start killed before its first record reuses its number
        assert len({r["run_id"] for r in rounds}) == 1 and sessions == sorted(sessions) and sessions[-1] > 1
        print(f"{len(rounds)} rounds over 21 BS starts ({sessions[-1]} sessions recorded rounds); {recovered} "
              "records recovered from checkpoints")
        for ue in ues:
            ue.stop()
    finally:
        rig.close()
