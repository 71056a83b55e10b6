"""``testbed sim`` in CI: a reduced scenario (BS + 4 UEs on the digits, 6 rounds) as processes through the
virtual-RF hub. Every process exits cleanly, the run directory holds what it says, every training mode
appears (the UEs choose by the full method's policy), the accuracy rises, and bad input gets one line."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]


def sim(*args: str, timeout_s: float = 600.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed", "sim", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s)  # fmt: skip


@pytest.mark.timeout(900)
def test_sim_runs_the_stack_and_every_mode_appears(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = sim(str(DATA / "sim_tiny.toml"), "--out", str(out), "--schemes", "policy_snr_threshold", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    top = json.loads(done.stdout)
    assert top == json.loads((out / "summary.json").read_text())
    run, summary = out / "policy_snr_threshold", top["schemes"]["policy_snr_threshold"]
    assert summary == json.loads((run / "summary.json").read_text())
    row = top["table"]["schemes"]["policy_snr_threshold"]
    assert row["clock"] == "virtual" and row["total_time_s"] == summary["air_time_s"]  # the air's clock
    assert summary["rounds"] == 6 and summary["outcomes"] == ["complete"] * 6
    assert set(summary["exit_statuses"].values()) == {0}, summary["exit_statuses"]  # nothing killed
    modes = {mode for r in summary["modes"] for mode in r.values()}
    assert modes == {"distributed", "centralized_full", "centralized_decoder"}, summary["modes"]
    loss = summary["loss"]
    # the codec learns: below the untrained loss in every later round and well below it at the end (not
    # monotone round by round: which uploads make a round's deadline depends on the machine's load)
    assert all(later < loss[0] for later in loss[1:]) and loss[-1] < loss[0] - 0.05, loss
    assert max(summary["accuracy"]) > summary["accuracy"][0]
    assert summary["air_time_s"] > 0 and summary["wall_time_s"] > 0
    records = [json.loads(line) for line in (run / "state" / "rounds.jsonl").read_text().splitlines()]
    for r in records:
        assert r["training"]["refused"] == {} and r["training"]["model_finite"]  # every upload verified and used
        assert r["choices_refused"] == {} and set(r["choices"]) == set(r["modes"])
    assert stat.S_IMODE((run / "keys" / "bs.key_secret").stat().st_mode) == 0o600
    for name in ("hub", "bs", "ue0", "ue1", "ue2", "ue3"):
        assert (run / "logs" / f"{name}.log").stat().st_size > 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("round ")]
    assert len(lines) == 6 and "ue2 symb" in lines[-1], lines  # live progress: per-UE mode, SNR and MCS
    shown = subprocess.run([sys.executable, "-m", "testbed", "report", str(out), "--json"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    page = json.loads(shown.stdout)
    assert page["kind"] == "daemon" and (out / "report.html").stat().st_size > 10_000, page


def test_an_earlier_run_and_a_bad_scenario_are_refused_with_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "policy" / "state").mkdir(parents=True)
    (run / "policy" / "state" / "rounds.jsonl").write_text("{}\n")
    done = sim(str(DATA / "sim_tiny.toml"), "--out", str(run), timeout_s=120)
    assert done.returncode == 2 and "holds an earlier run; pass --resume" in done.stderr, done.stderr
    done = sim("--out", str(run), "--resume", "--rounds", "3", timeout_s=120)
    assert done.returncode == 2 and "drop --rounds" in done.stderr, done.stderr
    done = sim("--out", str(tmp_path / "empty"), "--resume", timeout_s=120)
    assert done.returncode == 2 and "holds no testbed sim run to resume" in done.stderr, done.stderr
    done = sim(str(DATA / "sim_tiny.toml"), "--out", str(tmp_path / "x"), "--schemes", "fedavg_deadline", timeout_s=120)
    assert done.returncode == 2 and "does not run as processes" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text((DATA / "sim_tiny.toml").read_text().replace("[run]", "[run]\nspeed_of_light = 3"))
    done = sim(str(bad), "--out", str(tmp_path / "other"), timeout_s=120)
    assert done.returncode == 2 and "speed_of_light" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "other" / "logs").exists()  # nothing started


def _children_in(run: Path) -> list[int]:
    """Processes whose working directory is the run directory (the stack's children)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(proc / "cwd").resolve() == run.resolve():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_a_sigterm_stops_the_whole_stack(tmp_path: Path) -> None:
    import signal
    import time

    run = tmp_path / "run"
    sim_proc = subprocess.Popen([sys.executable, "-m", "testbed", "sim", str(DATA / "sim_tiny.toml"), "--out",
                                 str(run)], cwd=REPO, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert sim_proc.stderr is not None
        line = sim_proc.stderr.readline()  # "sim: hub, BS and 4 UEs started ..."
        assert line.startswith("sim: hub, BS and 4 UEs started"), line
        assert len(_children_in(run / "policy")) == 6
        sim_proc.send_signal(signal.SIGTERM)
        assert sim_proc.wait(60) == 130
        deadline = time.monotonic() + 10
        while _children_in(run / "policy") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _children_in(run / "policy") == []  # nothing left running
    finally:
        if sim_proc.poll() is None:
            sim_proc.kill()


@pytest.mark.timeout(1200)  # two stacks start on two cores
def test_a_killed_bs_is_resumed_from_its_checkpoint(tmp_path: Path) -> None:
    """SIGKILL the BS once a round is recorded: the run stops with the BS named; --resume starts the stack again in
    the same directory and the BS goes on from the round after its checkpoint, its session counted."""
    import os
    import signal
    import time

    out = tmp_path / "out"
    run = out / "policy"
    ROUNDS = 5  # noqa: N806
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "sim", str(DATA / "sim_tiny.toml"), "--out", str(out),
                             "--rounds", str(ROUNDS)], cwd=REPO, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        records, log = run / "state" / "rounds.jsonl", run / "logs" / "bs.log"
        deadline = time.monotonic() + 400
        while not (log.exists() and '"state_saved"' in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first round's checkpoint and record are on disk: kill the BS at once
        bs = [p for p in _children_in(run) if b" bs " in Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")]
        assert len(bs) == 1
        os.kill(bs[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and "the BS exited with status -9" in err, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_after = [json.loads(line)["round"] for line in records.read_text().splitlines()]
    assert 1 <= len(killed_after) < ROUNDS, killed_after  # killed mid-run
    done = sim(str(DATA / "sim_tiny.toml"), "--out", str(out), "--resume", "--json")  # the same command, resumed
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)["schemes"]["policy"]
    assert summary["rounds"] == ROUNDS and summary["outcomes"] == ["complete"] * ROUNDS
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    resumed = lines[len(killed_after):]
    assert [r["round"] for r in resumed] == list(range(resumed[0]["round"], ROUNDS + 1)), [r["round"] for r in lines]
    assert resumed[0]["round"] in (killed_after[-1], killed_after[-1] + 1)  # the checkpointed round's successor
    assert {r["bs_session"] for r in resumed} == {lines[0]["bs_session"] + 1}
    assert {r["run_id"] for r in lines} == {lines[0]["run_id"]}


@pytest.mark.timeout(900)
def test_faults_a_killed_ue_rejoins_and_a_lossy_link_is_repaired(tmp_path: Path) -> None:
    """--kill ue0@2: its process is SIGKILLed in round 2, started again once round 2 is recorded, and uploads
    again later; --drop ue3=0.2: a fifth of the bursts on ue3's link are lost and the link layer repairs them
    (exact payload digests at the BS); the run completes and the report lists what happened."""
    out = tmp_path / "out"
    done = sim(str(DATA / "sim_tiny.toml"), "--out", str(out), "--rounds", "4", "--kill", "ue0@2", "--drop",
               "ue3=0.2", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)["schemes"]["policy"]
    assert summary["rounds"] == 4 and set(summary["exit_statuses"].values()) == {0}, summary
    records = [json.loads(line) for line in (out / "policy" / "state" / "rounds.jsonl").read_text().splitlines()]
    done_by_round = [r["done"] for r in records]
    assert "ue0" not in done_by_round[1] and any("ue0" in d for d in done_by_round[2:]), done_by_round
    assert all("ue3" in r["done"] for r in records)  # every upload of the lossy link arrived whole
    assert sum(r["uplink_nacks_sent"].get("ue3", 0) for r in records) > 0  # and losses were repaired
    shown = subprocess.run([sys.executable, "-m", "testbed", "report", str(out), "--json"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    page = (out / "report.html").read_text()
    assert "left during the round" in page and "ue_gone" in page, "the report lists the killed UE leaving"
