"""``testbed sim``: one scenario as the whole multi-process stack, in one run directory.

The run directory holds what a person needs to see what happened and nothing that needs this code to read:

    RUN_DIR/scenario.toml     the resolved scenario (as loaded, with the run's rounds and seed)
    RUN_DIR/air.toml          the hub's air (testbed/experiment/stack.py)
    RUN_DIR/bs.toml, RUN_DIR/<ue>.toml   each process's config
    RUN_DIR/keys/             CURVE key pairs of the BS and every UE (secret files 0600; testbed keys layout)
    RUN_DIR/logs/<name>.log   each process's JSON-line log (stderr); <name>.out its stdout
    RUN_DIR/state/rounds.jsonl   the BS's round records (docs/nodes.md), bs_state.pt its checkpoint
    RUN_DIR/summary.json      written at the end: rounds, accuracy per round, wall and air time, modes
    RUN_DIR/captures/         with ``capture``: SigMF recordings of what those nodes received (the hub's)

Processes: the hub first (its endpoint from its one JSON line), then the BS (its endpoint from its ``ready``
event), then every UE, each with one torch thread. The run ends when the BS reaches its rounds and exits; the
UEs and the hub are then stopped with SIGTERM (SIGKILL after a grace period). A child that exits early stops
the run with a line naming it and the tail of its log; so does Ctrl-C, and nothing is left running. A stack
made with ``resume`` starts again in a run directory it wrote: same keys and scenario, logs appended, and the
BS continues from its checkpoint (the round after the last one it saved; docs/nodes.md, "Durable state").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from testbed.control.security import generate_keypair
from testbed.errors import ConfigError, TestbedError
from testbed.experiment.scenario import Scenario
from testbed.experiment.stack import BS_NODE, METHOD, StackFiles, stack_files, toml_text
from testbed.radio.hub_outputs import hub_capture_args
from testbed.radio.scenario import Scenario as AirScenario

CAPTURE_DIR = "captures"  # RUN_DIR/captures/<node>-rx.sigmf-{meta,data} (testbed sim --capture)
STARTUP_TIMEOUT_S = 120.0  # importing torch and the data set in ten processes on two cores
STOP_GRACE_S = 30.0  # SIGTERM to SIGKILL: a UE finishing a torch step on a loaded 2-core machine
POLL_S = 0.5
CHILD_ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # many torch processes on a few cores


class SimError(TestbedError):
    """A process of the stack failed (exit status 1)."""


def resolved_scenario(scenario: Scenario, rounds: int, seed: int) -> str:
    """The scenario as a run used it (its rounds and seed in place), TOML that load_scenario reads back."""
    resolved = msgspec.to_builtins(msgspec.structs.replace(
        scenario, run=msgspec.structs.replace(scenario.run, rounds=rounds),
        training=msgspec.structs.replace(scenario.training, seed=seed)))  # fmt: skip
    ues = resolved.pop("ues")
    return toml_text(resolved, {"ues": ues})


@dataclass(frozen=True)
class Faults:
    """What goes wrong on purpose (testbed sim --kill / --drop): ``kill`` UE -> the round in which its process is
    SIGKILLed (once the BS has started that round; restarted once the round is recorded, so it rejoins a later
    one); ``drop`` node -> the share of bursts lost on its links (the hub's NodeSpec.burst_loss)."""

    kill: Mapping[str, int] = field(default_factory=dict)
    drop: Mapping[str, float] = field(default_factory=dict)


class _Child:
    """One process of the stack with its stdout and stderr in the run directory's logs (the log appended to
    with ``append``: a resumed run keeps the earlier sessions' lines)."""

    def __init__(self, name: str, args: list[str], logs: Path, cwd: Path, append: bool = False) -> None:
        self.name, self.log, self.out = name, logs / f"{name}.log", logs / f"{name}.out"
        # stdout holds the process's own answer (the hub's endpoint line): a fresh file; the log is appended to
        self._files: list[IO[bytes]] = [self.out.open("wb"), self.log.open("ab" if append else "wb")]
        self._log_start = self._files[1].tell()  # where this session's lines begin
        env = {**os.environ, **CHILD_ENV}
        self.popen = subprocess.Popen([sys.executable, "-m", "testbed", *args], cwd=cwd, env=env,
                                      stdout=self._files[0], stderr=self._files[1], start_new_session=True)  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        """This process's JSON log records (not an earlier session's, above it in an appended log)."""
        with self.log.open("rb") as f:
            f.seek(self._log_start)
            text = f.read().decode(errors="replace")
        out = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def tail(self, n: int = 8) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(f"    {line[:300]}" for line in lines)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def reap(self, deadline: float) -> None:
        try:
            self.popen.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        for f in self._files:
            f.close()


class Stack:
    """The hub, the BS and the UEs of one run (module docstring). ``plaintext``: no CURVE (tests)."""

    def __init__(
        self, run_dir: Path, scenario: Scenario, *, rounds: int, seed: int, scheme: str = METHOD,
        plaintext: bool = False, resume: bool = False, capture: tuple[str, ...] = (),
        faults: Faults | None = None,
    ) -> None:  # fmt: skip
        self.run_dir, self.scenario, self.rounds, self.seed, self.scheme = run_dir, scenario, rounds, seed, scheme
        self.resume, self._seen_at_start, self.capture = resume, 0, capture
        self.faults = faults or Faults()
        self._down: dict[str, int] = {}  # UE killed -> the round whose record restarts it
        self._done_kills: set[str] = set()
        self.keys = None if plaintext else run_dir / "keys"
        self.logs, self.state = run_dir / "logs", run_dir / "state"
        self.children: list[_Child] = []

    @property
    def records_path(self) -> Path:
        return self.state / "rounds.jsonl"

    def _prepare(self) -> None:
        run = self.run_dir
        if self.resume:
            if not (run / "scenario.toml").exists() or (self.keys is not None and not (self.keys / "bs.key").exists()):
                raise ConfigError(f"{run} holds no run of testbed sim to resume (no scenario.toml or keys/)")
            self.logs.mkdir(parents=True, exist_ok=True)
            self.state.mkdir(exist_ok=True)
            return
        if self.records_path.exists() or (run / "summary.json").exists():
            raise ConfigError(f"{run} holds an earlier run; pass --overwrite to replace it, or choose another --out")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(exist_ok=True)
        (run / "scenario.toml").write_text(resolved_scenario(self.scenario, self.rounds, self.seed))
        if self.keys is not None:
            (self.keys / "ues").mkdir(parents=True, exist_ok=True)
            for name in [BS_NODE, *(ue.name for ue in self.scenario.ues)]:
                files = generate_keypair(self.keys, name, overwrite=True)
                if name != BS_NODE:
                    (self.keys / "ues" / f"{name}.key").write_bytes(files.public_file.read_bytes())

    def _files(self, hub: str, bs: str) -> StackFiles:
        return stack_files(self.scenario, rounds=self.rounds, seed=self.seed, state_dir=self.state,
                           hub_endpoint=hub, bs_endpoint=bs, keys=self.keys, scheme=self.scheme,
                           burst_loss=self.faults.drop)  # fmt: skip

    def _spawn(self, name: str, args: list[str]) -> _Child:
        child = _Child(name, args, self.logs, self.run_dir, append=self.resume)
        self.children.append(child)
        return child

    def _wait_for(self, child: _Child, found: Callable[[], str | None], what: str) -> str:
        end = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < end:
            value = found()
            if value:
                return value
            if child.popen.poll() is not None:
                raise SimError(f"{child.name} exited with status {child.popen.returncode} before {what}; its log "
                               f"({child.log}):\n{child.tail()}")  # fmt: skip
            time.sleep(0.1)
        raise SimError(f"{child.name} did not report {what} within {STARTUP_TIMEOUT_S:.0f} s; see {child.log}")

    def start(self) -> None:
        """Write the run directory and start every process (hub, BS, UEs)."""
        self._prepare()
        self._seen_at_start = len(self.records())  # a resumed run's earlier rounds
        files = self._files("tcp://127.0.0.1:1", "tcp://127.0.0.1:*")  # validates every config first
        (self.run_dir / "air.toml").write_text(files.air)
        args = ["hub", "--scenario", "air.toml", "--json"]
        if self.capture:  # SigMF recordings of what these nodes receive, in captures/
            args += hub_capture_args(msgspec.toml.decode(files.air, type=AirScenario), self.capture, CAPTURE_DIR)
        hub = self._spawn("hub", args)

        def hub_endpoint() -> str | None:
            text = hub.out.read_text().strip()
            return json.loads(text.splitlines()[0])["endpoint"] if text else None

        hub_at = self._wait_for(hub, hub_endpoint, "its endpoint")
        (self.run_dir / "bs.toml").write_text(self._files(hub_at, "tcp://127.0.0.1:*").bs)
        bs = self._spawn("bs", ["bs", "--config", "bs.toml"])

        def ready() -> str | None:
            return next((e["endpoint"] for e in bs.events() if e.get("event") == "ready"), None)

        bs_at = self._wait_for(bs, ready, "ready")
        files = self._files(hub_at, bs_at)
        for name, text in files.ues.items():
            (self.run_dir / f"{name}.toml").write_text(text)
            self._spawn(name, ["ue", "--config", f"{name}.toml"])

    def records(self) -> list[dict[str, Any]]:
        """The BS's records so far, the last of each round: a BS killed between a round's record and its
        checkpoint runs that round again (docs/nodes.md, "Durable state")."""
        if not self.records_path.exists():
            return []
        out: dict[int, dict[str, Any]] = {}
        for line in self.records_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line being appended
            out[record.get("round", len(out) + 1)] = record
        return [out[k] for k in sorted(out)]

    def run(self, on_record: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        """Until the BS has recorded its rounds and exited; ``on_record`` sees each new record once."""
        seen = self._seen_at_start
        bs = next(c for c in self.children if c.name == "bs")
        while True:
            records = self.records()
            for record in records[seen:]:
                on_record(record)
            seen = len(records)
            code = bs.popen.poll()
            if code is not None:
                if code != 0:
                    raise SimError(f"the BS exited with status {code}; its log ({bs.log}):\n{bs.tail()}")
                return self.records()
            self._inject(bs, records)
            for child in self.children:
                if child is not bs and child.name not in self._down and child.popen.poll() is not None:
                    raise SimError(f"{child.name} exited with status {child.popen.returncode} during the run; its "
                                   f"log ({child.log}):\n{child.tail()}")  # fmt: skip
            time.sleep(POLL_S)

    def _inject(self, bs: _Child, records: list[dict[str, Any]]) -> None:
        """Kill each UE of ``faults.kill`` once the BS has started its round; start it again once that round is
        recorded (a new process with the same config: it registers and rejoins, as a rebooted board would)."""
        recorded = {r.get("round") for r in records}
        for name, rnd in list(self._down.items()):
            if rnd in recorded:
                del self._down[name]
                i = next(i for i, c in enumerate(self.children) if c.name == name)
                self.children[i] = _Child(name, ["ue", "--config", f"{name}.toml"], self.logs, self.run_dir, True)
        pending = {ue: r for ue, r in self.faults.kill.items() if r not in recorded and ue not in self._done_kills}
        if not pending:
            return
        started = {e.get("round") for e in bs.events() if e.get("event") == "round_started"}
        for ue, rnd in pending.items():
            if rnd in started:
                child = next(c for c in self.children if c.name == ue)
                os.killpg(child.popen.pid, signal.SIGKILL)
                child.popen.wait(10)
                self._done_kills.add(ue)
                self._down[ue] = rnd

    def close(self) -> dict[str, int | None]:
        """Stop every process still running, the UEs first, then the BS, then the hub (which the others' radios
        need until they have said BYE); their exit statuses."""
        hub, bs, ues = self.children[:1], self.children[1:2], self.children[2:]
        for group in (ues, bs, hub):
            for child in group:
                child.stop()
            deadline = time.monotonic() + STOP_GRACE_S
            for child in group:
                child.reap(deadline)
        return {c.name: c.popen.returncode for c in self.children}


def summarise(
    stack: Stack, records: list[dict[str, Any]], wall_s: float, statuses: dict[str, int | None]
) -> dict[str, Any]:
    """summary.json: the run in a few numbers (the records hold the rest); ``scheme``, ``scenario`` and
    ``target_accuracy`` are what ``testbed report`` titles and measures the run by."""
    accuracy = [r.get("training", {}).get("accuracy") for r in records]
    return {
        "scenario": stack.scenario.name,
        "scheme": stack.scheme,
        "target_accuracy": stack.scenario.run.target_accuracy,
        "rounds": len(records),
        "final_accuracy": accuracy[-1] if accuracy else None,
        "accuracy": accuracy,
        "loss": [r.get("training", {}).get("loss") for r in records],
        "outcomes": [r.get("outcome") for r in records],
        "modes": [r.get("modes", {}) for r in records],
        "air_time_s": sum(r["air_clock_s"] - r["air_started_s"] for r in records),  # the rounds on the air's clock
        "wall_time_s": wall_s,
        "exit_statuses": statuses,
    }
