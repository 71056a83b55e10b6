"""Run the daemons and the hub as subprocesses, read their JSON-line logs, and always clean up."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.control.security import generate_keypair

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """
seed = 3
center_freq_hz = 2.4e9
sample_rate_hz = 1e6
noise_floor_dbm = -90.0
wait_for_all_nodes = false
[[nodes]]
id = "bs"
position_m = [0.0, 0.0]
{ue_nodes}
"""
UE_NODE = """
[[nodes]]
id = "ue-{i}"
position_m = [{x}, {y}]
crystal_ppm = {ppm}
"""
AIR = """
[air]
mcs = "{mcs}"
sample_rate_hz = 1e6
frame_payload_bytes = 1024
tdma_cycle_samples = 200000
nack_quiet_samples = 40000
max_passes = 16
"""


class Proc:
    """A child process whose stdout/stderr lines are collected by reader threads (JSON lines parsed)."""

    def __init__(
        self, name: str, args: list[str], cwd: Path, env: dict[str, str] | None = None, preamble: str = ""
    ) -> None:
        """``preamble``: Python source run before the CLI (a test's monkeypatch inside the child)."""
        self.name = name
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        # the child imports this tree's testbed, not whatever an editable install points at (cwd is a tmp dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        code = f"{preamble}\nimport sys; from testbed.cli import main; sys.exit(main())"
        command = [sys.executable, "-c", code, *args]
        self.popen = subprocess.Popen(
            command, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.log_path = cwd / f"{name}.log"
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        for stream, sink in ((self.popen.stdout, self.stdout), (self.popen.stderr, self.stderr)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    def _read(self, stream: Any, sink: list[str]) -> None:
        with self.log_path.open("a") as log:  # kept for the post-mortem of a failed test
            for line in stream:
                log.write(line)
                with self._lock:
                    sink.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        """The JSON log records seen so far (non-JSON lines skipped)."""
        with self._lock:
            lines = list(self.stderr)
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def wait_event(self, match: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> dict[str, Any]:
        """The first log record for which ``match`` is true; fails the test (with the log tail) on timeout."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for rec in self.events():
                if match(rec):
                    return rec
            if self.popen.poll() is not None and not any(match(r) for r in self.events()):
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no {what} within {timeout_s} s; exit {self.popen.poll()}\n{self.tail()}")

    def wait_line(self, text: str, timeout_s: float) -> None:
        """Wait until a stderr line contains ``text`` (plain logs, e.g. the hub's)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._lock:
                if any(text in line for line in self.stderr):
                    return
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no line with {text!r} within {timeout_s} s\n{self.tail()}")

    def tail(self, n: int = 25) -> str:
        with self._lock:
            return "\n".join(self.stderr[-n:])

    def wait_exit(self, timeout_s: float) -> int:
        """The exit code; fails the test with the log tail if the process is still running after ``timeout_s``."""
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout_s} s\n{self.tail(60)}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit code (SIGKILL if it does not end in time)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            raise AssertionError(f"{self.name} ignored signal {sig} for {timeout_s} s\n{self.tail()}") from None


class NodeRig:
    """A hub, a BS and UEs in a temporary directory; ``close`` kills whatever is still running."""

    def __init__(
        self, root: Path, num_ues: int, distance_m: float = 20.0, mcs: str = "adaptive", curve: bool = False,
        distances_m: list[float] | None = None,
    ) -> None:  # fmt: skip
        """UEs on a quarter circle of ``distance_m`` around the BS (20 m: about 25 dB SNR; 220 m: about 4 dB), or
        each at its own of ``distances_m``. ``curve``: CURVE keys from ``generate_keypair`` (as ``testbed keys``
        writes them); else plain text."""
        self.root, self.num_ues = root, num_ues
        self.keys = root / "keys" if curve else None
        if self.keys is not None:
            generate_keypair(self.keys, "bs")
            (self.keys / "ues").mkdir()
            for i in range(1, num_ues + 1):
                generate_keypair(self.keys, f"ue-{i}")
                shutil.copy(self.keys / f"ue-{i}.key", self.keys / "ues" / f"ue-{i}.key")
        self.air = AIR.format(mcs=mcs)
        self.procs: list[Proc] = []
        angles = [math.pi / 2 * i / (num_ues + 1) for i in range(1, num_ues + 1)]
        radii = distances_m or [distance_m] * num_ues
        nodes = "".join(
            UE_NODE.format(i=i, x=r * math.cos(a), y=r * math.sin(a), ppm=(-1) ** i * 2.0)
            for i, (a, r) in enumerate(zip(angles, radii, strict=True), start=1)
        )
        (root / "scenario.toml").write_text(SCENARIO.format(ue_nodes=nodes))
        self.hub_endpoint = ""
        self.bs_endpoint = ""

    def start_hub(self) -> Proc:
        hub = self.spawn("hub", ["-v", "hub", "--scenario", "scenario.toml", "--json"])
        end = time.monotonic() + 60
        while not hub.stdout and time.monotonic() < end and hub.popen.poll() is None:
            time.sleep(0.05)
        if not hub.stdout:
            raise AssertionError(f"hub did not start\n{hub.tail()}")
        self.hub_endpoint = json.loads(hub.stdout[0])["endpoint"]
        return hub

    def start_bs(
        self, env: dict[str, str] | None = None, sections: str = "", preamble: str = "", *, wait: bool = True,
        bind_endpoint: str = "tcp://127.0.0.1:*", **bs: Any,
    ) -> Proc:  # fmt: skip
        """The BS with ``bs`` fields in [bs] and ``sections`` (TOML text, e.g. [training]) appended;
        ``preamble``: see Proc. ``wait``: until it is ready (its endpoint is then ``bs_endpoint``);
        ``bind_endpoint``: a BS restarted for the same UEs binds the endpoint they know."""
        ues = ", ".join(f'"ue-{i}" = {i}' for i in range(1, self.num_ues + 1))
        fields = "\n".join(f"{k} = {json.dumps(v)}" for k, v in bs.items())
        text = (
            f'[bs]\nues = {{ {ues} }}\nstate_dir = "{self.root / "state"}"\n{fields}\n{sections}\n{self.air}\n'
            f'[radio]\nendpoint = "{self.hub_endpoint}"\nnode = "bs"\n'
            f'[control]\nbind_endpoint = "{bind_endpoint}"\nheartbeat_interval_s = 0.3\n'
            f"{self._security('bs')}\n"
        )
        (self.root / "bs.toml").write_text(text)
        proc = self.spawn("bs", ["bs", "--config", "bs.toml"], env, preamble)
        if wait:
            self.bs_endpoint = proc.wait_event(lambda r: r.get("event") == "ready", 60, "ready")["endpoint"]
        return proc

    def start_ue(
        self,
        i: int,
        upload_size_bytes: int = 1500,
        sections: str = "",
        env: dict[str, str] | None = None,
        preamble: str = "",
        radio: str = "",
        **ue: Any,
    ) -> Proc:
        """UE ``i`` with ``ue`` fields in [ue], ``radio`` lines in [radio] and ``sections`` (TOML text)
        appended; ``preamble``: see Proc."""
        fields = "\n".join(f"{k} = {json.dumps(v)}" for k, v in ue.items())
        text = (
            f'[ue]\nue_id = "ue-{i}"\nnode_id = {i}\nupload_size_bytes = {upload_size_bytes}\n{fields}\n'
            f"{sections}\n{self.air}\n"
            f'[radio]\nendpoint = "{self.hub_endpoint}"\nnode = "ue-{i}"\n{radio}\n'
            f'[control]\nserver_endpoint = "{self.bs_endpoint}"\n{self._security(f"ue-{i}")}\n'
        )
        (self.root / f"ue-{i}.toml").write_text(text)
        return self.spawn(f"ue-{i}", ["ue", "--config", f"ue-{i}.toml"], env, preamble)

    def _security(self, name: str) -> str:
        """The [control] security line of node ``name``."""
        if self.keys is None:
            return "security = { plaintext = true }"
        secret = f'secret_key_file = "{self.keys / (name + ".key_secret")}"'
        bs_key = self.keys / "bs.key"
        peers = f'allowed_dir = "{self.keys / "ues"}"' if name == "bs" else f'server_key_file = "{bs_key}"'
        return f"security = {{ {secret}, {peers} }}"

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None, preamble: str = "") -> Proc:
        proc = Proc(name, args, self.root, env, preamble)
        self.procs.append(proc)
        return proc

    def rounds(self) -> list[dict[str, Any]]:
        path = self.root / "state" / "rounds.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait(10)
