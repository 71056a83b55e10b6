"""The engine's state on disk: 100 random corruptions all refused in one line, a killed ``testbed train``
resumes to the metrics of an uninterrupted run, an earlier run is not overwritten by accident."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from testbed.cli import main
from testbed.errors import StateError
from testbed.experiment.engine import CHECKPOINT_FILE, METRICS_FILE, Engine
from testbed.learning.checkpoint import MAGIC, save_checkpoint, temp_path

NUM_CORRUPTIONS = 100


def _manifest_and_payload(raw: bytes) -> tuple[dict, dict]:
    end = raw.index(b"\n")
    return json.loads(raw[len(MAGIC) : end]), torch.load(io.BytesIO(raw[end + 1 :]), weights_only=True)


def _float_tensors(value, found):
    if isinstance(value, dict):
        for v in value.values():
            _float_tensors(v, found)
    elif isinstance(value, list):
        for v in value:
            _float_tensors(v, found)
    elif isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
        found.append(value)
    return found


def corrupt(raw: bytes, kind: int, rng: np.random.Generator, scratch) -> bytes:
    """One random corruption of a checkpoint file's bytes."""
    if kind == 0:  # truncation anywhere, also inside the manifest or to nothing
        return raw[: int(rng.integers(0, len(raw)))]
    if kind == 1:  # 1-8 flipped bytes anywhere
        data = bytearray(raw)
        for pos in rng.choice(len(data), size=int(rng.integers(1, 9)), replace=False):
            data[pos] ^= int(rng.integers(1, 256))
        return bytes(data)
    # kind 2: a non-finite or huge value written with a valid manifest and hash (a diverged or edited run)
    manifest, payload = _manifest_and_payload(raw)
    tensors = _float_tensors(payload, [])
    t = tensors[int(rng.integers(len(tensors)))]
    t.view(-1)[int(rng.integers(t.numel()))] = float(rng.choice([np.nan, np.inf, -np.inf, 1e30, -1e20, 3e38]))
    identity = {k: v for k, v in manifest.items() if k not in ("format_version", "payload_bytes", "payload_sha256")}
    save_checkpoint(scratch, payload, identity)
    return scratch.read_bytes()


@pytest.mark.usefixtures("one_torch_thread")
def test_a_hundred_random_corruptions_are_a_hundred_clear_refusals(tmp_path, tiny_scenario) -> None:
    Engine(tiny_scenario, "hybrid", tmp_path / "run").run(1)
    path = tmp_path / "run" / CHECKPOINT_FILE
    good = path.read_bytes()
    engine = Engine(tiny_scenario, "hybrid", tmp_path / "run")
    assert engine.resume() and engine.rounds_done == 1  # the intact file loads
    rng = np.random.default_rng(14)
    refused = []
    for i in range(NUM_CORRUPTIONS):
        bad = corrupt(good, i % 3, rng, tmp_path / "scratch.pt")
        assert bad != good
        path.write_bytes(bad)
        with pytest.raises(StateError) as info:
            engine.resume()
        message = str(info.value)
        assert str(path) in message and "\n" not in message
        refused.append(message)
    assert len(refused) == NUM_CORRUPTIONS
    path.write_bytes(good)
    assert engine.resume() and engine.rounds_done == 1


@pytest.mark.usefixtures("one_torch_thread")
def test_resume_refuses_a_changed_seed_or_scenario_and_a_bad_file_is_exit_2_without_traceback(tmp_path, capsys):
    out = tmp_path / "t"
    args = ["train", "--scheme", "fedavg_deadline", "--out", str(out), "--dataset", "digits", "--rounds", "1"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--resume", "--seed", "5"]) == 2
    assert "is for seed 1, this run has 5" in capsys.readouterr().err
    assert main([*args, "--resume", "--partition", "dirichlet"]) == 2
    assert "is for scenario_sha256" in capsys.readouterr().err
    (out / CHECKPOINT_FILE).write_bytes(b"garbage")
    assert main([*args, "--resume", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "error": f"{out / CHECKPOINT_FILE} is not a testbed checkpoint (empty, foreign or damaged header); delete "
        "it or start a fresh run with another --out",
        "kind": "StateError",
        "exit_status": 2,
    }
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


@pytest.mark.usefixtures("one_torch_thread")
def test_train_refuses_to_overwrite_an_earlier_run_unless_told(tmp_path, capsys) -> None:
    args = ["train", "--scheme", "fedavg_deadline", "--out", str(tmp_path), "--dataset", "digits", "--rounds", "1"]
    assert main(args) == 0
    before = (tmp_path / METRICS_FILE).read_text()
    temp_path(tmp_path / CHECKPOINT_FILE).write_bytes(b"left by a kill")
    assert main(args) == 2
    assert "holds an earlier run (metrics.jsonl, checkpoint.pt); pass --resume" in capsys.readouterr().err
    (tmp_path / CHECKPOINT_FILE).rename(tmp_path / "kept.pt")  # killed before its first checkpoint
    assert main(args) == 2
    assert "(metrics.jsonl); pass --overwrite to replace it" in capsys.readouterr().err
    (tmp_path / "kept.pt").rename(tmp_path / CHECKPOINT_FILE)
    assert (tmp_path / METRICS_FILE).read_text() == before
    assert main([*args, "--overwrite"]) == 0
    assert not temp_path(tmp_path / CHECKPOINT_FILE).exists()


def _train(out, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "import sys; from testbed.cli import main; sys.exit(main())", "train",
           "--scheme", "hybrid", "--dataset", "digits", "--rounds", "6", "--out", str(out), *extra]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_train_killed_and_resumed_gives_the_metrics_of_an_uninterrupted_run(tmp_path) -> None:
    straight = _train(tmp_path / "straight")
    killed = _train(tmp_path / "killed")
    metrics = tmp_path / "killed" / METRICS_FILE
    end = time.monotonic() + 300
    while killed.poll() is None and time.monotonic() < end:  # kill it somewhere after its third round
        if metrics.exists() and metrics.read_text().count("\n") >= 3:
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert killed.wait() == -signal.SIGKILL
    assert straight.wait() == 0, straight.stderr.read()
    resumed = _train(tmp_path / "killed", "--resume")
    assert resumed.wait() == 0, resumed.stderr.read()
    assert metrics.read_text() == (tmp_path / "straight" / METRICS_FILE).read_text()
    assert [json.loads(line)["round"] for line in metrics.read_text().splitlines()] == list(range(6))
    assert not [p for p in os.listdir(tmp_path / "killed") if p.endswith(".tmp")]
