"""What both daemons do around their core: one loop pass over control events, radio events and finished jobs,
and carrying out the core's actions through one table (the radio and worker actions here, the control-plane
ones from the daemon)."""

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
    record actions); frames go to ``pump``, jobs to ``worker``."""

    def __init__(
        self, core: Core, pump: RadioPump, worker: Worker, control_handlers: dict[type, Callable[[Any], None]]
    ) -> None:
        self.core, self.pump, self.worker = core, pump, worker
        self.handlers: dict[type, Callable[[Any], None]] = {
            Transmit: lambda a: pump.submit(a.job),
            Cancel: lambda a: pump.cancel(a.job_id),
            SetTxPower: lambda a: pump.set_tx_power(a.tx_power_dbm),
            StartJob: worker.start,
            CancelJob: worker.cancel,
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
            self.carry_out(self.core.job_done(done))
        return True
