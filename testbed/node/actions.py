"""What the node cores ask their shell to do, and the radio and job events a shell reports back to them.

The BS and UE cores (bs_core.py, ue_core.py) do no I/O: a shell feeds them events (a control-plane
``Event``, a radio ``Received`` / ``OnAir``, a timer pass, a ``JobDone``) and carries out the actions they
return, in order. The daemons' shell does it with ZeroMQ, the radio pump and a worker thread; the in-process
engine (testbed/experiment/inprocess) with an event queue in virtual time. Only the shell knows how long a
job took: the daemon measures it, the engine models it from the board.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from testbed.control.protocol import Body
from testbed.link.framelink import Heard
from testbed.link.placement import Job

JobKind = Literal["train", "capability", "consume"]
RoundStatus = Literal["complete", "deadline", "aborted"]


@dataclass(frozen=True)
class Send:
    """A control message: to UE ``to`` (BS side), or to the BS (UE side, ``to`` empty)."""

    body: Body
    to: str = ""


@dataclass(frozen=True)
class Transmit:
    """Put ``job``'s frames on the air (back to back, or in its TDMA slot of every cycle)."""

    job: Job


@dataclass(frozen=True)
class Cancel:
    """Drop the frames of radio job ``job_id`` that are not on the air yet."""

    job_id: int


@dataclass(frozen=True)
class SetTxPower:
    """Set the radio's transmit power for the bursts that follow (ASSIGN's, every round); the shell answers
    with ``TxPowerSet`` once the radio has it."""

    tx_power_dbm: float


@dataclass(frozen=True)
class StartJob:
    """Run ``run()`` off the event loop; report ``JobDone(key, result, elapsed_s)`` when it returns.

    kind : what the work is, so a shell that models time (the engine) can charge it. key : the core's handle
    for the result (a job whose key the core no longer expects is discarded)."""

    kind: JobKind
    key: tuple[Any, ...]
    run: Callable[[], Any] = field(compare=False)


@dataclass(frozen=True)
class CancelJob:
    """Cancel job ``key`` if it has not started (a started one finishes and its result is discarded)."""

    key: tuple[Any, ...]


@dataclass(frozen=True)
class OpenRound:
    """BS: open round ``number`` on the control plane (ROUND_START to every live UE) with this model."""

    number: int
    model_digest: bytes
    model_size_bytes: int
    deadline_s: float


@dataclass(frozen=True)
class CloseRound:
    """BS: close the round on the control plane (ROUND_END to its live participants)."""

    status: RoundStatus


@dataclass(frozen=True)
class Record:
    """BS: one finished round's record (the daemon appends it to ``rounds.jsonl``)."""

    fields: dict[str, Any]


Action = Send | Transmit | SetTxPower | Cancel | StartJob | CancelJob | OpenRound | CloseRound | Record


@dataclass(frozen=True)
class Received:
    """A data frame detected at ``start_sample`` of this node's receive clock; ``frame.payload`` is None
    when its CRC failed (its preamble still measured the channel)."""

    start_sample: int
    frame: Heard


@dataclass(frozen=True)
class OnAir:
    """Every burst of job ``job_id`` has been transmitted; the last ends at ``end_sample``."""

    job_id: int
    end_sample: int


@dataclass(frozen=True)
class TxPowerSet:
    """A ``SetTxPower`` was carried out: the power asked for and the power the radio applies (its step and
    range; the same when the shell's radio has neither)."""

    requested_dbm: float
    applied_dbm: float


@dataclass(frozen=True)
class Failed:
    """The radio failed; the pump has stopped."""

    reason: str


RadioEvent = Received | OnAir | TxPowerSet | Failed  # what the radio pump reports to the loop


@dataclass(frozen=True)
class JobDone:
    """A ``StartJob`` finished: its result, and the seconds it took on the shell's clock."""

    key: tuple[Any, ...]
    result: Any
    elapsed_s: float
