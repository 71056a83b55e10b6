"""The in-process shell: the BS core and every UE core in one process, in virtual time, over one shared air.

A discrete-event simulation on one sample clock (the air's): control messages arrive ``control_latency_s``
after they were sent, through the same ``Registry`` rules the ControlServer applies (sessions, round scope,
participants, the deadline); jobs finish after the virtual time the shell's ``job_time`` gives them (a UE's
training from its board's cycles per sample at its applied CPU clock; the BS's step from its board); frames
go on the air where each node's ``BurstPlanner`` puts them (TDMA slots, as the radio pump does), window by
window through a ``FrameLink``: ``ModelFrameLink`` with the PER table (the ``model`` medium) or
``PhyFrameLink`` with the real modem and the channel models (``phy``); a UE's frames carry its applied TX
power relative to the power its link SNR is quoted at (``SetTxPower``: the model medium shifts the SNR, the
phy medium scales the burst). Between events the clock jumps
ahead; a node's timers run at the step after it got an event, and every node's once per ``tick`` (a
quarter TDMA cycle, well under the NACK quiet time) so time-driven ones (NACK after silence) fire. The jobs
the cores start before the clock moves run together on the network's executor (testbed/experiment/executor.py:
the UEs' local training batched, or on Ray), each with the queue entry it took when it started.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testbed.control.config import Event
from testbed.control.protocol import Body, Hello, Rejected, RoundEnd, RoundStart, UplinkDone, make_envelope
from testbed.control.registry import Registry
from testbed.errors import LinkError
from testbed.experiment.executor import EmbeddedExecutor, Executor
from testbed.link.framelink import FrameLink, TxFrame
from testbed.link.placement import BurstPlanner
from testbed.node.actions import (
    Action,
    Cancel,
    CancelJob,
    CloseRound,
    JobDone,
    OnAir,
    OpenRound,
    Received,
    Record,
    Send,
    SetTxPower,
    StartJob,
    Transmit,
    TxPowerSet,
)
from testbed.node.bs_core import BsCore
from testbed.node.config import BS_NODE_ID, AirConfig
from testbed.node.jobtime import JobTime
from testbed.node.ue_core import UeCore

log = logging.getLogger(__name__)

@dataclass
class _Node:
    name: str  # "bs" or the UE id
    node_id: int
    core: BsCore | UeCore
    planner: BurstPlanner
    job_time: JobTime
    jobs: dict[tuple[Any, ...], int]  # key -> queue entry id of its JobDone (cancellable)
    reference_dbm: float = 0.0  # the TX power the node's link SNR is quoted at (a UE's scenario tx_power_dbm)
    tx_gain_db: float = 0.0  # its applied TX power above that reference, carried by each of its frames


class Network:
    """Build it, ``add_bs`` and ``add_ue`` cores made with ``now`` / ``cursor`` of this network, ``start()``,
    then ``run(until)``. ``records`` receives every round record the BS core emits."""

    def __init__(
        self,
        air: AirConfig,
        link: FrameLink,
        control_latency_s: float,
        records: Callable[[dict], None],
        executor: Executor | None = None,
    ):
        self.air, self.link, self.records = air, link, records
        self.executor = executor if executor is not None else EmbeddedExecutor()
        self._started: list[tuple[_Node, StartJob, int]] = []  # jobs started since the clock last moved
        self.rate_hz = air.sample_rate_hz
        self.latency = max(1, round(control_latency_s * self.rate_hz))
        self.tick = max(1, air.tdma_cycle_samples // 4)
        self.clock = 0  # samples
        self.registry = Registry()
        self.nodes: dict[str, _Node] = {}
        self.by_id: dict[int, _Node] = {}
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cancelled: set[int] = set()
        self._ue_round: dict[str, int] = {}  # each UE's view of the round (its envelopes carry it)
        self._msg_seq = itertools.count(1)
        self.rejections: Counter[str] = Counter()  # messages the Registry refused, by reason (none expected)
        self._touched: set[str] = set()  # nodes that got an event since their timers last ran
        self._next_tick = 0

    # --- the cores' clock -------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock / self.rate_hz

    def cursor(self) -> int:
        return self.clock

    def add_bs(self, core: BsCore, job_time: JobTime) -> None:
        self._add(_Node("bs", BS_NODE_ID, core, self._planner(), job_time, {}))

    def add_ue(self, core: UeCore, job_time: JobTime, tx_power_dbm: float = 0.0) -> None:
        """``tx_power_dbm``: the power the UE's link SNR is quoted at; what ASSIGN sets shifts the link from it."""
        self._add(_Node(core.ue_id, core.node_id, core, self._planner(), job_time, {}, tx_power_dbm))

    def _planner(self) -> BurstPlanner:
        return BurstPlanner(self.air.guard_samples, self.air.tdma_cycle_samples, self.link.burst_num_samples)

    def _add(self, node: _Node) -> None:
        self.nodes[node.name], self.by_id[node.node_id] = node, node

    def start(self) -> None:
        """Every UE says HELLO now; WELCOME and the BS's "joined" arrive one control latency later."""
        for name in self.nodes:
            if name != "bs":
                self._ue_round[name] = 0
                self._to_bs(name, Hello(session_id=1, software_version="in-process"))

    # --- the event queue -------------------------------------------------------------------------------
    def _at(self, sample: int, fn: Callable[[], None]) -> int:
        entry = next(self._seq)
        heapq.heappush(self._queue, (sample, entry, fn))
        return entry

    def run(self, until: Callable[[], bool], max_s: float = float("inf")) -> None:
        """Advance virtual time until ``until()`` holds (checked after every step) or ``max_s`` passes."""
        limit = self.clock + max_s * self.rate_hz
        while not until():
            if self.clock > limit:
                raise LinkError(f"the in-process run reached {self.now():.0f} s of virtual time without finishing")
            self._step()

    def _step(self) -> None:
        while self._queue and self._queue[0][0] <= self.clock:
            _, entry, fn = heapq.heappop(self._queue)
            if entry not in self._cancelled:
                fn()
            else:
                self._cancelled.discard(entry)
        touched, self._touched = self._touched, set()
        every = self.clock >= self._next_tick  # every node's timers once a tick; between, those with news
        if every:
            self._next_tick = self.clock + self.tick
        for node in self.nodes.values():
            if every or node.name in touched:
                self._carry_out(node, node.core.timers())
        self._run_jobs()  # before the clock moves: the jobs started at this sample
        horizon = self.clock + self.air.window_samples
        if any(s is not None and s < horizon for s in (n.planner.next_start for n in self.nodes.values())):
            self._window(horizon)
            return
        nxt = [self._next_tick]
        if self._queue:
            nxt.append(self._queue[0][0])
        nxt += [s for s in (n.planner.next_start for n in self.nodes.values()) if s is not None]
        self.clock = max(self.clock + 1, min(nxt))

    # --- the air ---------------------------------------------------------------------------------------
    def _window(self, horizon: int) -> None:
        """Every burst that starts before ``horizon`` (or before the end of one already taken) goes through the
        link in one window; each receiver hears its frames at the window's end."""
        bursts = []
        while due := [(n, b) for n in self.nodes.values() for b in n.planner.due(horizon)]:
            bursts += due
            horizon = max(b.end for _, b in bursts)
        start = min(b.start for _, b in bursts)
        end = max(b.end for _, b in bursts)
        self.clock = max(self.clock, end)
        down = [(n, b) for n, b in bursts if n.name == "bs"]
        up = [(n, b) for n, b in bursts if n.name != "bs"]
        ues = [n.node_id for n in self.nodes.values() if n.name != "bs"]
        for group, receivers in ((down, ues), (up, [BS_NODE_ID])):  # UEs listen to the BS only
            if not group:
                continue
            frames = [TxFrame(n.node_id, b.start - start, b.payload, b.mcs, stream_id=n.node_id & 0xFF,
                              seq=b.seq & 0xFFFF, tx_gain_db=n.tx_gain_db) for n, b in group]  # fmt: skip
            window = self.link.exchange(frames, receivers, end - start)
            for rx, heard in window.heard.items():
                node = self.by_id[rx]
                for h in heard:
                    self._deliver(node, node.core.radio(Received(self.clock, h)))
        for node in self.nodes.values():
            for job_id, job_end in node.planner.finished(self.clock):
                self._deliver(node, node.core.radio(OnAir(job_id, job_end)))
        self._run_jobs()

    # --- actions -----------------------------------------------------------------------------------------
    def _deliver(self, node: _Node, actions: list[Action]) -> None:
        """An event reached ``node``: carry out its answer, and run its timers at the next step."""
        self._touched.add(node.name)
        self._carry_out(node, actions)

    def _carry_out(self, node: _Node, actions: list[Action]) -> None:
        for a in actions:
            self._handlers[type(a)](node, a)

    @property
    def _handlers(self) -> dict[type, Callable[[_Node, Any], None]]:
        return {
            Send: self._send,
            Transmit: lambda node, a: node.planner.plan(a.job, self.clock),
            Cancel: lambda node, a: node.planner.cancel(a.job_id),
            SetTxPower: self._set_tx_power,
            StartJob: self._start_job,
            CancelJob: self._cancel_job,
            OpenRound: self._open_round,
            CloseRound: self._close_round,
            Record: lambda node, a: self.records(a.fields),
        }

    def _set_tx_power(self, node: _Node, a: SetTxPower) -> None:
        """An ideal radio: the power is applied as asked, for the frames the node puts on the air from now on."""
        node.tx_gain_db = a.tx_power_dbm - node.reference_dbm
        self._deliver(node, node.core.radio(TxPowerSet(a.tx_power_dbm, a.tx_power_dbm)))

    def _start_job(self, node: _Node, job: StartJob) -> None:
        """The job starts now: it runs before the clock next moves, with every job started at this sample (the
        executor may batch them); its JobDone arrives after the virtual time it takes. Its queue entry is taken now, so
        events keep their order and a CancelJob in the same step still cancels it."""
        entry = next(self._seq)
        node.jobs[job.key] = entry
        self._started.append((node, job, entry))

    def _run_jobs(self) -> None:
        """Run the jobs started since the clock last moved and queue their JobDone."""
        if not self._started:
            return
        started, self._started = self._started, []
        results = self.executor.run([job.run for _, job, _ in started])
        for (node, job, entry), result in zip(started, results, strict=True):
            seconds = node.job_time(job, result)
            done = JobDone(job.key, result, seconds)
            heapq.heappush(self._queue, (self.clock + round(seconds * self.rate_hz), entry, self._finish(node, done)))

    def _finish(self, node: _Node, done: JobDone) -> Callable[[], None]:
        def finish() -> None:
            node.jobs.pop(done.key, None)
            self._deliver(node, node.core.job_done(done))

        return finish

    def _cancel_job(self, node: _Node, a: CancelJob) -> None:
        entry = node.jobs.pop(a.key, None)
        if entry is not None:
            self._cancelled.add(entry)

    def _send(self, node: _Node, a: Send) -> None:
        if node.name == "bs":
            self._to_ue(a.to, a.body)
        else:
            self._to_bs(node.name, a.body)

    # --- the control plane (the ControlServer's and ControlClient's rules, without sockets) -------------
    def _to_bs(self, ue: str, body: Body) -> None:
        env = make_envelope(body, ue_id=ue, seq=next(self._msg_seq), round=self._ue_round[ue])
        self._at(self.clock + self.latency, lambda: self._bs_receives(ue, env))

    def _bs_receives(self, ue: str, env: Any) -> None:
        bs, reg, now = self.nodes["bs"], self.registry, self.now()
        try:
            if isinstance(env.body, Hello):
                events = reg.hello(env, b"", now)
                self._at(self.clock + self.latency, lambda: self._ue_event(ue, Event("registered", ue, reg.round)))
            else:
                reg.accept(env, b"", now)
                if isinstance(env.body, UplinkDone):
                    events = reg.uplink_done(env)
                else:
                    events = [Event("message", ue, env.round, env)]
        except Rejected as exc:
            self.rejections[exc.reason] += 1
            return
        for ev in events:
            self._deliver(bs, bs.core.control(ev))

    def _to_ue(self, ue: str, body: Body) -> None:
        env = make_envelope(body, ue_id=ue, seq=next(self._msg_seq), round=self.registry.round)
        self._at(self.clock + self.latency, lambda: self._ue_event(ue, Event("message", ue, env.round, env)))

    def _ue_event(self, ue: str, ev: Event) -> None:
        if ev.message is not None and isinstance(ev.message.body, RoundStart):
            self._ue_round[ue] = ev.round
        elif ev.kind == "registered":
            self._ue_round[ue] = ev.round
        node = self.nodes[ue]
        self._deliver(node, node.core.control(ev))

    def _open_round(self, node: _Node, a: OpenRound) -> None:
        state = self.registry.start_round(self.now(), a.deadline_s, a.number)
        for ue in sorted(state.participants):
            self._to_ue(ue, RoundStart(a.model_digest, a.model_size_bytes, a.deadline_s))
        number = state.round
        self._at(self.clock + round(a.deadline_s * self.rate_hz), lambda: self._deadline(number))
        for ev in self.registry.check_complete():
            self._deliver(node, node.core.control(ev))

    def _deadline(self, number: int) -> None:
        cur = self.registry.current
        if cur is None or cur.round != number:
            return
        bs = self.nodes["bs"]
        for ev in self.registry.expire(self.now(), float("inf")):
            self._deliver(bs, bs.core.control(ev))

    def _close_round(self, node: _Node, a: CloseRound) -> None:
        state = self.registry.end_round()
        for ue in sorted(state.participants - state.dropped):
            self._to_ue(ue, RoundEnd(a.status, len(state.done)))
