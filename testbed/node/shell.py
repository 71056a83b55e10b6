"""What both daemons do around their core: one loop pass over control events, radio events and finished jobs,
and carrying out the core's actions through one table (the radio and worker actions here, the control-plane
ones from the daemon). With a ``job_time`` (a modelled board on the virtual air) a job holds the radio's clock
while it runs and then moves it on by the job's modelled seconds, which its JobDone carries instead of the
host's (testbed/node/jobtime.py), as the in-process engine charges it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from testbed.control.config import Event
from testbed.node.actions import (
    Action,
    Cancel,
    CancelJob,
    Failed,
    JobDone,
    OnAir,
    Received,
    SetTxPower,
    StartJob,
    Transmit,
    TxPowerSet,
)
from testbed.node.jobtime import JobTime
from testbed.node.pump import RadioPump
from testbed.node.worker import Worker

POLL_S = 0.02  # longest control wait per pass, so radio events are handled promptly


class Core(Protocol):
    def control(self, ev: Event) -> list[Action]: ...
    def radio(self, ev: Received | OnAir | TxPowerSet) -> list[Action]: ...
    def job_done(self, done: JobDone) -> list[Action]: ...
    def timers(self) -> list[Action]: ...


class Shell:
    """``control_handlers``: the daemon's handlers of its control-plane actions (Send, and the BS's round and
    record actions); frames go to ``pump``, jobs to ``worker``; ``job_time``: see the module docstring."""

    def __init__(
        self,
        core: Core,
        pump: RadioPump,
        worker: Worker,
        control_handlers: dict[type, Callable[[Any], None]],
        job_time: JobTime | None = None,
    ) -> None:
        self.core, self.pump, self.worker, self.job_time = core, pump, worker, job_time
        self._holding: dict[tuple[Any, ...], StartJob] = {}  # jobs that hold the radio's clock
        self.handlers: dict[type, Callable[[Any], None]] = {
            Transmit: lambda a: pump.submit(a.job),
            Cancel: lambda a: pump.cancel(a.job_id),
            SetTxPower: lambda a: pump.set_tx_power(a.tx_power_dbm),
            StartJob: self._start_job,
            CancelJob: self._cancel_job,
            **control_handlers,
        }

    def carry_out(self, actions: list[Action]) -> None:
        """Do what the core asked, in order."""
        for a in actions:
            self.handlers[type(a)](a)

    def control(self, events: Iterable[Event]) -> None:
        for ev in events:
            self.carry_out(self.core.control(ev))

    def feed(self, control_events: Iterable[Event]) -> bool:
        """One pass: the control plane's events, the radio's, the finished jobs; False if the radio failed."""
        self.control(control_events)
        for rev in self.pump.events():
            if isinstance(rev, Failed):
                return False
            self.carry_out(self.core.radio(rev))
        for done in self.worker.finished():
            self.carry_out(self.core.job_done(self.timed(done)))
        return True

    def _start_job(self, job: StartJob) -> None:
        if self.job_time is not None:
            self.pump.pause()
            self._holding[job.key] = job
        self.worker.start(job)

    def _cancel_job(self, action: CancelJob) -> None:
        self.worker.cancel(action)
        if self._holding.pop(action.key, None) is not None:
            self.pump.resume(0)  # nobody takes its result: it took no air time

    def timed(self, done: JobDone) -> JobDone:
        """Release the clock a job held, moved on by the job's modelled seconds (what ``done`` then says)."""
        job = self._holding.pop(done.key, None)
        if job is None or self.job_time is None:
            return done
        seconds = self.job_time(job, done.result)
        self.pump.resume(round(seconds * self.pump.air.sample_rate_hz))
        return JobDone(done.key, done.result, seconds)
