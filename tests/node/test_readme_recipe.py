"""The README's multi-process recipe, run from the README's own text: keys, hub, BS and two UEs as processes.

The command lines are read from README.md ("What you can run"), not copied here, so the test fails when the
README stops being true. They run in a temporary directory holding a copy of firmware_cfg/nodes (the recipe
runs from the repository root and writes under runs/); a fixed port that is busy on this machine is replaced by
a free one in the commands and the copied configs alike.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from testbed.node.config import BsConfig, UeConfig, load_config
from tests.node.node_helpers import REPO_ROOT, Proc

RECIPE_HEADING = "A multi-process run on one machine"
ROUND_TIMEOUT_S = 90.0


def recipe_commands(readme: str) -> list[list[str]]:
    """The argument lists (after ``testbed``) of the indented block that follows the recipe's paragraph."""
    lines = readme.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(RECIPE_HEADING)), None)
    assert start is not None, f"README.md has no paragraph starting {RECIPE_HEADING!r}"
    i = start
    while i < len(lines) and not lines[i].startswith("    "):
        i += 1
    commands = []
    while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
        words = shlex.split(lines[i], comments=True)
        if words:
            assert words[0] == "testbed", f"README recipe line is not a testbed command: {lines[i]!r}"
            commands.append(words[1:])
        i += 1
    return commands


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _substitute_busy_ports(root: Path, commands: list[list[str]]) -> list[list[str]]:
    """Replace every busy ``127.0.0.1:PORT`` of the configs with a free port, in the copied TOML files and in
    the commands."""
    tomls = list((root / "firmware_cfg").rglob("*.toml"))
    text = " ".join(" ".join(c) for c in commands) + "".join(p.read_text() for p in tomls)
    ports = {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", text)}
    for port in sorted(p for p in ports if _port_busy(p)):
        old, new = f"127.0.0.1:{port}", f"127.0.0.1:{_free_port()}"
        for p in tomls:
            p.write_text(p.read_text().replace(old, new))
        commands = [[w.replace(old, new) for w in c] for c in commands]
    return commands


def test_recipe_configs_differ_from_the_lab_files_only_where_their_headers_say() -> None:
    """Air, radio, training and policy are the lab's; the BS changes only paths, the UEs only the board."""
    nodes = REPO_ROOT / "firmware_cfg" / "nodes"
    lab_bs, bs = load_config(nodes / "bs.toml", BsConfig), load_config(nodes / "local" / "bs.toml", BsConfig)
    assert (bs.air, bs.radio, bs.training, bs.assign) == (lab_bs.air, lab_bs.radio, lab_bs.training, lab_bs.assign)
    assert msgspec.structs.replace(bs.bs, state_dir=lab_bs.bs.state_dir) == lab_bs.bs
    assert bs.control.bind_endpoint.startswith("tcp://127.0.0.1:")
    for name in ("ue-1", "ue-2"):
        lab_ue = load_config(nodes / f"{name}.toml", UeConfig)
        ue = load_config(nodes / "local" / f"{name}.toml", UeConfig)
        assert (ue.air, ue.radio, ue.training) == (lab_ue.air, lab_ue.radio, lab_ue.training)
        assert msgspec.structs.replace(ue.ue, simulated_board=False) == lab_ue.ue
        assert ue.ue.simulated_board
        assert ue.control.server_endpoint == bs.control.bind_endpoint


@pytest.mark.slow
def test_readme_multi_process_recipe_completes_a_round_and_stops_cleanly(tmp_path: Path) -> None:
    commands = recipe_commands((REPO_ROOT / "README.md").read_text())
    kinds = [c[0] for c in commands]
    assert kinds == ["keys", "hub", "bs", "ue", "ue"], f"README recipe: {commands}"
    shutil.copytree(REPO_ROOT / "firmware_cfg" / "nodes", tmp_path / "firmware_cfg" / "nodes")
    commands = _substitute_busy_ports(tmp_path, commands)
    env = {"PYTHONPATH": str(REPO_ROOT)}  # the child processes test this checkout, not the editable install
    keys = subprocess.run(
        [sys.executable, "-c", "import sys; from testbed.cli import main; sys.exit(main())", *commands[0]],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert keys.returncode == 0, keys.stderr
    procs: list[Proc] = []
    try:
        hub = Proc("hub", commands[1], tmp_path, env)
        procs.append(hub)
        _wait(lambda: any("hub listening" in line for line in hub.stdout), hub, 60, "hub listening")
        bs = Proc("bs", commands[2], tmp_path, env)
        procs.append(bs)
        bs.wait_event(lambda r: r.get("event") == "ready", 60, "ready")
        ues = [Proc(f"ue-{i}", c, tmp_path, env) for i, c in enumerate(commands[3:], start=1)]
        procs.extend(ues)
        rounds = tmp_path / "runs" / "local" / "bs" / "rounds.jsonl"
        _wait(lambda: rounds.exists() and rounds.read_text().endswith("\n"), bs, ROUND_TIMEOUT_S, "a round record")
        record = json.loads(rounds.read_text().splitlines()[0])
        assert record["round"] == 1 and record["outcome"] == "complete", record
        assert sorted(record["participants"]) == ["ue-1", "ue-2"], record
        statuses = {p.name: p.stop(signal.SIGTERM, 30) for p in [*ues, bs, hub]}
        assert statuses == {"ue-1": 0, "ue-2": 0, "bs": 0, "hub": 0}, statuses
        for p in procs:
            assert not any("Traceback" in line for line in p.stderr + p.stdout), f"{p.name}:\n{p.tail(60)}"
    finally:
        for p in procs:
            if p.popen.poll() is None:
                p.popen.kill()
                p.popen.wait(10)


def _wait(ready: Callable[[], bool], proc: Proc, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if ready():
            return
        if proc.popen.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{proc.name}: no {what} within {timeout_s} s; exit {proc.popen.poll()}\n{proc.tail(40)}")
