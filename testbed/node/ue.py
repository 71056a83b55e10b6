"""The UE daemon (``testbed ue --config FILE``): the UE core (ue_core.py) in a shell of ZeroMQ, radio and thread.

One event loop, like the BS (STYLE.md #13): each pass polls the control client, hands the core the control
events, the radio pump's events and the worker's finished jobs, then (while registered) runs its timers, and
carries out every action the core returns (testbed/node/actions.py). The training step and the capability
measurement run in the worker thread, so the loop keeps sending heartbeats and serving NACKs while they
compute (torch releases the GIL in its ops).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import closing

from testbed.control.client import ControlClient
from testbed.errors import ProtocolError
from testbed.node.actions import Send
from testbed.node.config import UeConfig
from testbed.node.first_info import UeFirstInfo
from testbed.node.jobtime import ue_job_time
from testbed.node.pump import RadioPump
from testbed.node.runtime import event, radio_factory, radio_running, virtual_clock
from testbed.node.sdnotify import Notifier
from testbed.node.shell import POLL_S, Shell
from testbed.node.step import UeTraining
from testbed.node.ue_core import UeCore
from testbed.node.worker import Worker

log = logging.getLogger(__name__)


class UeDaemon:
    """A UE agent: ``run()`` serves until ``stop`` is set; returns the exit code. ``first_info``: as UeCore's."""

    def __init__(
        self,
        cfg: UeConfig,
        training: UeTraining,
        stop: threading.Event,
        notifier: Notifier,
        first_info: UeFirstInfo | None = None,
    ) -> None:
        self.cfg, self.training, self.stop, self.notifier = cfg, training, stop, notifier
        self.first_info = first_info
        self.node_id = cfg.ue.node_id
        self.core: UeCore | None = None  # made by serve(), with the radio's sample clock
        # training steps and capability measurements, one at a time; its thread starts at the first job
        self._worker = Worker(cfg.ue.ue_id)

    @property
    def rounds_done(self) -> int:
        return self.core.rounds_done if self.core is not None else 0

    def run(self) -> int:
        cfg = self.cfg
        security = cfg.control.security.client()  # bad key files fail before the radio is touched
        pump = RadioPump(radio_factory(cfg.radio, cfg.air), cfg.air, stream_id=self.node_id & 0xFF)
        with radio_running(pump, self.stop, self.notifier, cfg.radio.timeout_s, self._stopped) as ready:
            if not ready:
                return 0 if self.stop.is_set() else 1
            with closing(ControlClient(cfg.client_config(), security)) as client:  # register once it can hear
                self.notifier.ready(f"{cfg.ue.ue_id} radio open, registering with {cfg.control.server_endpoint}")
                event(log, "ready", ue=cfg.ue.ue_id, radio=cfg.radio.node)
                return self.serve(client, pump)

    def _stopped(self, radio_closed: bool) -> None:
        event(log, "stopped", rounds=self.rounds_done, radio_closed=radio_closed)

    def serve(self, client: ControlClient, pump: RadioPump) -> int:
        """The event loop with its worker thread, until ``stop`` (0) or a radio failure (1). On the way out
        queued jobs are cancelled and only the running one is waited for (a job cannot be interrupted). Once
        per daemon: the worker is shut down on return."""
        cfg = self.cfg
        core = self.core = UeCore(cfg.ue.ue_id, self.node_id, cfg.air, self.training, self.first_info,
                                  now=time.monotonic, cursor=lambda: pump.cursor)  # fmt: skip
        modelled = self.first_info is not None and cfg.ue.simulated_board and virtual_clock(cfg.radio, cfg.air)
        job_time = ue_job_time(self.first_info) if modelled else None  # a real board computes in real time
        shell = Shell(core, pump, self._worker, {Send: lambda a: self._send(client, a)}, job_time=job_time)
        try:
            while not self.stop.is_set():
                self.notifier.watchdog()
                if not shell.feed(client.poll(POLL_S)):
                    return 1
                if client.state == "registered":
                    shell.carry_out(core.timers())
            return 0
        finally:
            self._worker.shutdown()

    @staticmethod
    def _send(client: ControlClient, a: Send) -> None:
        try:
            client.send(a.body)
        except ProtocolError as exc:  # reconnecting: the core hears "gone" next and drops its round
            log.info("not sent: %s", exc)
