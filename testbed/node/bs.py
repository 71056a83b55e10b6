"""The BS daemon (``testbed bs --config FILE``): the BS core (bs_core.py) in a shell of ZeroMQ, radio and thread.

One event loop (STYLE.md #13): each pass polls the control plane for at most ``POLL_S``, hands the core the
control events, the radio pump's events and the worker's finished jobs, then runs its timers; every action the
core returns is carried out here (testbed/node/actions.py): a message through the ControlServer, frames to the
pump, a job to the worker thread, a record appended to ``state_dir/rounds.jsonl``. The round logic is the
core's: the in-process engine (testbed/experiment/inprocess) drives the same core in virtual time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec

from testbed.control.server import ControlServer
from testbed.errors import ProtocolError, StateError
from testbed.learning.checkpoint import (
    append_jsonl,
    drop_torn_tail,
    load_checkpoint,
    read_jsonl,
    remove_stale_temps,
    save_checkpoint,
)
from testbed.node.actions import (
    CloseRound,
    OpenRound,
    Record,
    Send,
)
from testbed.node.assigners import Assigner, config_assigner
from testbed.node.bs_core import BsCore
from testbed.node.config import BS_NODE_ID, BsConfig
from testbed.node.jobtime import JobTime, bs_job_time
from testbed.node.pump import RadioPump
from testbed.node.runtime import event, radio_factory, radio_running, virtual_clock
from testbed.node.sdnotify import Notifier
from testbed.node.shell import POLL_S, Shell
from testbed.node.step import BsTraining
from testbed.node.worker import Worker

log = logging.getLogger(__name__)

STATE_FILE = "bs_state.pt"  # the BS's checkpoint beside rounds.jsonl in [bs] state_dir


class BsDaemon:
    """The BS: ``run()`` serves until ``num_rounds`` rounds are over or ``stop`` is set; returns the exit code.

    ``assigner`` gives each round's first information and ASSIGN orders (testbed/node/assigners.py; default:
    the [assign] fields)."""

    def __init__(
        self,
        cfg: BsConfig,
        training: BsTraining,
        stop: threading.Event,
        notifier: Notifier,
        assigner: Assigner | None = None,
    ) -> None:
        self.cfg, self.training, self.stop, self.notifier = cfg, training, stop, notifier
        self.assigner = assigner or config_assigner(cfg.assign)
        self.records_path = Path(cfg.bs.state_dir) / "rounds.jsonl"
        self.state_path = Path(cfg.bs.state_dir) / STATE_FILE
        self._restored: dict[str, Any] | None = None  # the checkpoint read at start-up, applied by serve()
        self.core: BsCore | None = None  # made by serve(), with the radio's sample clock
        self._worker = Worker("bs")  # the training step, one round at a time; its thread starts at the first job

    @property
    def rounds_done(self) -> int:
        return self.core.rounds_done if self.core is not None else 0

    def run(self) -> int:
        self.records_path.parent.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        security = cfg.control.security.server()  # bad key files fail before the radio is touched
        self._restored = self._read_state()  # and so does a damaged or foreign checkpoint
        pump = RadioPump(radio_factory(cfg.radio, cfg.air), cfg.air, stream_id=BS_NODE_ID)
        with radio_running(pump, self.stop, self.notifier, cfg.radio.timeout_s, self._stopped) as ready:
            if not ready:
                return 0 if self.stop.is_set() else 1
            with closing(ControlServer(cfg.control.server_config(), security)) as server:  # once the radio runs
                self.notifier.ready(f"serving on {server.endpoint}")
                event(log, "ready", endpoint=server.endpoint, radio=cfg.radio.node)
                return self.serve(server, pump)

    def _stopped(self, radio_closed: bool) -> None:
        event(log, "stopped", rounds=self.rounds_done, radio_closed=radio_closed)

    def serve(self, server: ControlServer, pump: RadioPump) -> int:
        """The event loop with its worker thread, until ``num_rounds`` rounds are recorded or ``stop`` (0) or a
        radio failure (1). On the way out nothing queued is started and the running training step is waited
        for (a torch step cannot be interrupted); its round is then recorded. Once per daemon: the worker is
        shut down on return."""
        cfg = self.cfg
        core = self.core = BsCore(cfg.bs, cfg.air, self.training, self.assigner, now=time.monotonic,
                                  cursor=lambda: pump.cursor, wall=time.time,
                                  ue_chooses=cfg.training is not None)  # fmt: skip
        self._resume(core)
        shell = Shell(core, pump, self._worker, {
            Send: lambda a: self._send(server, a),
            OpenRound: lambda a: shell.control(
                server.start_round(a.model_digest, a.model_size_bytes, a.deadline_s, a.number)
            ),
            CloseRound: lambda a: server.end_round(a.status),
            Record: self._record,
        }, job_time=self._job_time())  # fmt: skip
        try:
            while not self.stop.is_set():
                self.notifier.watchdog()
                if not shell.feed(server.poll(POLL_S)):
                    return 1
                shell.carry_out(core.timers())
                if cfg.bs.num_rounds and core.rounds_done >= cfg.bs.num_rounds:
                    return 0
            return 0
        finally:
            for done in self._worker.shutdown():
                shell.carry_out(core.job_done(shell.timed(done)))

    def _job_time(self) -> JobTime | None:
        """On the virtual air the training step takes [bs] board's time on the air's clock (jobtime.py)."""
        if not virtual_clock(self.cfg.radio, self.cfg.air):
            return None
        return bs_job_time(self.training.clock)

    @staticmethod
    def _send(server: ControlServer, a: Send) -> None:
        try:
            server.send(a.to, a.body)
        except ProtocolError as exc:  # gone between the core's view and now: its expiry event follows
            log.info("not sent: %s", exc)

    # --- durable state ----------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        """What a checkpoint must match: this BS's UEs, training and orders (a changed config is a new run)."""
        cfg = self.cfg
        fixed = msgspec.to_builtins({"ues": cfg.bs.ues, "training": cfg.training, "assign": cfg.assign})
        return {"role": "bs", "config_sha256": hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()}

    def _read_state(self) -> dict[str, Any] | None:
        """The verified checkpoint of an earlier session of this run, or None (a new run)."""
        remove_stale_temps(self.state_path.parent)
        drop_torn_tail(self.records_path)  # a BS killed mid-append; the next record starts on a line of its own
        if not self.state_path.exists():
            return None
        remedy = f"move it and {self.records_path.name} out of {self.state_path.parent} to start a new run"
        _, state = load_checkpoint(self.state_path, self._identity(), remedy)
        return state

    def _resume(self, core: BsCore) -> None:
        """Continue the run of the checkpoint (its next round, its model), or start a new run."""
        state = self._restored
        if state is None:
            core.run_id = secrets.token_hex(8)  # names the run in every record; not experiment randomness
            event(log, "run_started", run_id=core.run_id)
            return
        try:
            core.load_state_dict(state["core"])
            self.training.load_state_dict(state["training"])
        except (KeyError, TypeError, ValueError, RuntimeError, msgspec.ValidationError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise StateError(
                f"checkpoint {self.state_path} does not fit this BS ({type(exc).__name__}: {detail}); move it and "
                f"{self.records_path.name} away to start a new run"
            ) from exc
        self._recover_record(state)
        core.session += 1
        event(log, "run_resumed", run_id=core.run_id, session=core.session, next_round=core.round_number + 1)

    def _record(self, a: Record) -> None:
        """The state the round leaves, with the round's record in it (atomic), then the record (appended,
        fsynced): a BS that dies between them appends the record from its checkpoint when it starts again
        (``_recover_record``), so a finished round is recorded exactly once and never run again."""
        assert self.core is not None
        record = json.dumps(a.fields)  # as the log holds it (plain JSON: the checkpoint loads with weights_only)
        state = {"core": self.core.state_dict(), "training": self.training.state_dict(), "record": record}
        save_checkpoint(self.state_path, state, {**self._identity(), "round": self.core.round_number})
        append_jsonl(self.records_path, json.loads(record))
        event(log, "state_saved", round=self.core.round_number)

    def _recover_record(self, state: dict[str, Any]) -> None:
        """The checkpointed round's record, appended if the BS died before it was (see ``_record``)."""
        text = state.get("record")
        if not isinstance(text, str):
            return
        record = json.loads(text)
        recorded = read_jsonl(self.records_path) if self.records_path.exists() else []
        if all(r.get("round") != record.get("round") for r in recorded):
            append_jsonl(self.records_path, record)
            event(log, "record_recovered", round=record.get("round"))
