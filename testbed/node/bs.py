"""The BS daemon (``testbed bs --config FILE``): control server, radio pump and rounds with deadlines.

One event loop (STYLE.md #13): each pass polls the control plane for at most ``POLL_S``, drains the radio
pump's events, then runs the timers (round start, broadcast repair, uplink NACKs and acknowledgements).

A round (docs/nodes.md): ASSIGN with each live UE's uplink slot, ROUND_START (model SHA-256, size, deadline)
to every live UE, the model broadcast over the radio (object id = round number, repaired from the UEs'
NACKs), each UE's upload received in its TDMA slot and acknowledged, UPLINK_DONE over the control plane.
When every participant is done or gone, or the deadline passes, ROUND_END goes out; the round counts if at
least ``min_fraction`` of its participants finished: their uploads go to the training step; otherwise it is
skipped. Then one JSON record is appended to ``state_dir/rounds.jsonl``.

The training step (``consume``: aggregation, the BS's own training, evaluation) runs in one worker thread, so
the loop keeps answering heartbeats, NACKs and registrations while it computes. The loop hands it the
uploads after ROUND_END and picks up the finished future in its timers: then the record is written and the
next round scheduled; no round starts meanwhile (its model is the step's result). ``model_bytes`` stays in
the loop: it packs the model in under a millisecond (the lab's MNIST codec, 127 kB).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from testbed.control.config import Event
from testbed.control.protocol import Assign, CapabilityEnquiry, CapabilityReport, Nack, UplinkDone
from testbed.control.server import ControlServer
from testbed.errors import ConfigError, LinkError
from testbed.link.endpoints import Inbound, Outbound
from testbed.link.messages import SlotGrant
from testbed.link.segment import parse
from testbed.link.tdma import make_schedule
from testbed.link.tracker import ChannelTracker
from testbed.node.config import BS_NODE_ID, BsConfig
from testbed.node.first_info import Orders, UeView, config_orders
from testbed.node.pump import Failed, OnAir, RadioPump, Received
from testbed.node.runtime import event, radio_factory, radio_running, repair_timing
from testbed.node.sdnotify import Notifier
from testbed.node.training import BsTraining

log = logging.getLogger(__name__)

RoundStatus = Literal["complete", "deadline", "aborted"]
POLL_S = 0.02  # longest control wait per pass, so radio events are handled promptly


@dataclass
class _Round:
    number: int
    model: bytes
    participants: frozenset[str]
    broadcast: Outbound
    uplinks: dict[str, Inbound]
    downlink: SlotGrant  # the BS's own slot in every TDMA cycle
    broadcast_mcs: str
    uplink_mcs: dict[str, str]
    orders: dict[str, Orders]
    started_s: float = field(default_factory=time.monotonic)
    started_wall_s: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Consuming:
    """A round ended on the control plane whose uploads the worker is consuming (loop -> worker -> loop)."""

    record: dict[str, Any]  # the round record as of ROUND_END, without the training step's fields
    started_s: float  # monotonic time of the round's ROUND_START, for duration_s
    job: Future[dict[str, Any]]  # the training step's record fields


def round_outcome(num_participants: int, num_uploads: int, min_fraction: float) -> tuple[str, RoundStatus]:
    """(outcome, ROUND_END status) of a round: "complete" when every participant's upload arrived, "partial"
    (status "deadline") when at least ``min_fraction`` of them (and at least one) did, else "skipped"
    ("aborted": nothing is consumed)."""
    need = max(1, math.ceil(min_fraction * num_participants - 1e-9))  # 1e-9: 0.5 * 4 is 2, not 3
    if num_participants and num_uploads == num_participants:
        return "complete", "complete"
    if num_uploads >= need:
        return "partial", "deadline"
    return "skipped", "aborted"


Assigner = Callable[[Sequence[UeView]], dict[str, Orders]]


class BsDaemon:
    """The BS: ``run()`` serves until ``num_rounds`` rounds are over or ``stop`` is set; returns the exit code.

    ``assigner`` gives each round's ASSIGN orders (testbed/node/first_info.py; default: the [assign] fields)."""

    def __init__(
        self,
        cfg: BsConfig,
        training: BsTraining,
        stop: threading.Event,
        notifier: Notifier,
        assigner: Assigner | None = None,
    ) -> None:
        self.cfg, self.training, self.stop, self.notifier = cfg, training, stop, notifier
        self.assigner = assigner or (lambda views: config_orders(cfg.assign, [v.ue_id for v in views]))
        self.ue_of_node = {node: ue for ue, node in cfg.bs.ues.items()}
        self.node_of_stream = {node & 0xFF: node for node in cfg.bs.ues.values()}  # PHY header stream id
        self.tracker = ChannelTracker()  # uplink measurements: every frame heard from each UE
        self.records_path = Path(cfg.bs.state_dir) / "rounds.jsonl"
        self.rounds_done = 0
        self._round: _Round | None = None
        self._next_round_s = 0.0
        self._job_id = 0
        # the training step, one round at a time; its thread starts at the first job
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bs-worker")
        self._consuming: _Consuming | None = None

    def run(self) -> int:
        self.records_path.parent.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        security = cfg.control.security.server()  # bad key files fail before the radio is touched
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
        try:
            return self._loop(server, pump)
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)
            if self._consuming is not None and not self._consuming.job.cancelled():
                self._record_consumed()

    def _loop(self, server: ControlServer, pump: RadioPump) -> int:
        while not self.stop.is_set():
            self.notifier.watchdog()
            for ev in server.poll(POLL_S):
                self._control(server, pump, ev)
            for ev in pump.events():
                if isinstance(ev, Failed):
                    return 1
                self._radio(ev)
            self._timers(server, pump)
            if self.cfg.bs.num_rounds and self.rounds_done >= self.cfg.bs.num_rounds:
                return 0
        return 0

    # --- control plane --------------------------------------------------------------------------------
    def _control(self, server: ControlServer, pump: RadioPump, ev: Event) -> None:
        rnd = self._round
        if ev.kind in ("joined", "gone", "left"):
            event(log, f"ue_{ev.kind}", ue=ev.ue_id, round=ev.round)
            if ev.kind == "joined" and ev.ue_id in self.cfg.bs.ues:
                server.send(ev.ue_id, CapabilityEnquiry())  # first information: what can this UE do?
            elif ev.kind != "joined" and rnd is not None:
                rnd.broadcast.forget(ev.ue_id)
        elif ev.message is not None and isinstance(ev.message.body, CapabilityReport):
            cap = ev.message.body
            event(log, "capability", ue=ev.ue_id, cycles_per_sample=cap.cycles_per_sample,
                  cpu_freq_max_hz=cap.cpu_freq_max_hz, num_local_samples=cap.num_local_samples,
                  energy_available_j=cap.energy_available_j)  # fmt: skip
        elif ev.kind in ("round_complete", "round_deadline"):
            self._finish(server, pump, ev.kind)
        elif ev.message is not None and rnd is not None and ev.message.round == rnd.number:
            body = ev.message.body
            if isinstance(body, Nack):
                rnd.broadcast.add_nack(ev.ue_id, body.nack, time.monotonic())
            elif isinstance(body, UplinkDone):
                event(log, "uplink_done", ue=ev.ue_id, round=rnd.number, payload_bytes=body.payload_bytes,
                      compute_time_s=body.compute_time_s)  # fmt: skip

    # --- radio ------------------------------------------------------------------------------------------
    def _radio(self, ev: Received | OnAir) -> None:
        rnd = self._round
        if isinstance(ev, OnAir):
            if rnd is not None:
                rnd.broadcast.on_air(ev.job_id, ev.end_sample, time.monotonic())
            return
        node = self.node_of_stream.get(ev.frame.stream_id)
        if node is not None:
            self.tracker.add(node, BS_NODE_ID, ev.frame)
        if rnd is None or ev.frame.payload is None:
            return
        try:
            head, chunk = parse(ev.frame.payload)
        except LinkError:
            return
        ue = self.ue_of_node.get(head.src)
        inbound = rnd.uplinks.get(ue) if ue is not None else None
        if inbound is not None and head.object_id == inbound.object_id:
            inbound.offer(head, chunk, ev.start_sample)

    # --- timers -----------------------------------------------------------------------------------------
    def _timers(self, server: ControlServer, pump: RadioPump) -> None:
        rnd = self._round
        if self._consuming is not None:  # the next model is the training step's result: no round before it
            if self._consuming.job.done():
                self._record_consumed()
            return
        if rnd is None:
            mapped = [ue for ue in server.live_ues if ue in self.cfg.bs.ues]
            if time.monotonic() >= self._next_round_s and len(mapped) >= self.cfg.bs.min_ues:
                self._start(server, pump)
            return
        job = rnd.broadcast.next_job(self._next_job_id(), rnd.broadcast_mcs, pump.cursor, time.monotonic(),
                                     rnd.downlink)  # fmt: skip
        if job is not None:
            pump.submit(job)
            event(log, "broadcast_repair", round=rnd.number, frames=len(job.frames), passes=rnd.broadcast.passes)
        live = set(server.live_ues)
        for ue, inbound in rnd.uplinks.items():
            nack = inbound.ack_due() or inbound.nack_due(pump.cursor)
            if nack is not None and ue in live:
                server.send(ue, Nack(nack))

    def _start(self, server: ControlServer, pump: RadioPump) -> None:
        cfg, air = self.cfg, self.cfg.air
        live = server.live_ues
        slotted = [ue for ue in live if ue in cfg.bs.ues]
        for ue in sorted(set(live) - set(slotted)):
            log.warning("UE %s is not in [bs.ues]: no link node id, no uplink slot", ue)
        # one TDMA cycle: the BS's downlink slot first, then one uplink slot per UE, equal lengths
        slot = (air.tdma_cycle_samples - air.guard_samples * (len(slotted) + 2)) // (len(slotted) + 1)
        if slot < air.max_burst_samples:
            raise ConfigError(
                f"{len(slotted)} UEs and the BS leave {slot}-sample slots, less than one {air.max_burst_samples}-"
                "sample frame; raise air.tdma_cycle_samples or lower air.frame_payload_bytes"
            )
        nodes = [BS_NODE_ID, *(cfg.bs.ues[ue] for ue in slotted)]
        schedule = make_schedule([(node, slot) for node in nodes], air.guard_samples)
        policy = air.mcs_policy
        uplink_snr = {ue: self.tracker.snr_db(cfg.bs.ues[ue], BS_NODE_ID) for ue in slotted}
        uplink_mcs = {ue: policy.choose(uplink_snr[ue]) for ue in slotted}
        caps = {ue: rec.capability for ue, rec in server.registry.ues.items()}
        views = [UeView(ue, caps.get(ue), uplink_snr[ue]) for ue in slotted]
        orders = self.assigner(views)
        for ue in slotted:
            o, grant = orders[ue], schedule.grant_for(cfg.bs.ues[ue])
            assign = Assign(
                o.mode, o.group, o.tx_power_dbm, o.energy_budget_j, o.cpu_freq_hz, uplink_mcs[ue], grant
            )
            server.send(ue, assign)
        downlink_snrs = [self._downlink_snr_db(server, ue) for ue in slotted]  # the broadcast serves the weakest
        broadcast_mcs = policy.choose(None if None in downlink_snrs else min(downlink_snrs))
        number = server.round + 1
        model = self.training.model_bytes(number, orders, views)
        events = server.start_round(hashlib.sha256(model).digest(), len(model), cfg.bs.deadline_s)
        state = server.round_state
        participants = state.participants if state is not None else frozenset()
        receivers = {ue: cfg.bs.ues[ue] for ue in participants if ue in cfg.bs.ues}
        object_id = number & 0xFFFFFFFF
        broadcast = Outbound(model, src=BS_NODE_ID, dsts=sorted(receivers.values()), object_id=object_id,
                             frame_payload_bytes=air.frame_payload_bytes, expect=set(receivers),
                             timing=repair_timing(air, cfg.bs.nack_gather_s))  # fmt: skip
        uplinks = {ue: Inbound(BS_NODE_ID, src=node, object_id=object_id, timing=repair_timing(air),
                               since_sample=pump.cursor, nack_blind=False)
                   for ue, node in receivers.items()}  # fmt: skip
        downlink = schedule.grant_for(BS_NODE_ID)
        self._round = _Round(
            number, model, participants, broadcast, uplinks, downlink, broadcast_mcs, uplink_mcs, orders
        )
        first = broadcast.next_job(self._next_job_id(), broadcast_mcs, pump.cursor, time.monotonic(), downlink)
        if first is not None:
            pump.submit(first)
        event(log, "round_started", round=number, participants=sorted(participants), model_bytes=len(model),
              frames=broadcast.count, deadline_s=cfg.bs.deadline_s, mcs=broadcast_mcs)  # fmt: skip
        for ev in events:
            self._control(server, pump, ev)

    def _finish(self, server: ControlServer, pump: RadioPump, kind: str) -> None:
        rnd, state = self._round, server.round_state
        if rnd is None or state is None:
            return
        for job_id in rnd.broadcast.job_ids:
            pump.cancel(job_id)  # a repair pass still queued is of no use now
        done = sorted(state.done)
        uploads = {}
        for ue in done:
            try:
                uploads[ue] = rnd.uplinks[ue].deliver()
            except (KeyError, LinkError) as exc:
                log.error("UE %s reported UPLINK_DONE but its upload is not verified here: %s", ue, exc)
        outcome, status = round_outcome(len(rnd.participants), len(uploads), self.cfg.bs.min_fraction)
        server.end_round(status)
        self._round = None
        record = {
            "round": rnd.number,
            "outcome": outcome,
            "trigger": kind,
            "participants": sorted(rnd.participants),
            "done": sorted(uploads),
            "dropped": sorted(state.dropped),
            "model_bytes": len(rnd.model),
            "model_sha256": hashlib.sha256(rnd.model).hexdigest(),
            "uploads": {ue: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for ue, d in uploads.items()},
            "broadcast_mcs": rnd.broadcast_mcs,
            "uplink_mcs": rnd.uplink_mcs,
            "broadcast_passes": rnd.broadcast.passes,
            "broadcast_frames_sent": rnd.broadcast.frames_sent,
            "uplink_nacks_sent": {ue: i.nacks_sent for ue, i in rnd.uplinks.items()},
            "uplink_snr_db": {ue: self.tracker.snr_db(self.cfg.bs.ues[ue], BS_NODE_ID) for ue in rnd.uplinks},
            "downlink_snr_db": {ue: self._downlink_snr_db(server, ue) for ue in rnd.uplinks},
            "modes": {ue: o.mode for ue, o in rnd.orders.items()},
            "started_unix_s": rnd.started_wall_s,
        }
        event(log, "round_ended", round=rnd.number, outcome=outcome, status=status, consume=outcome != "skipped")
        if outcome == "skipped":
            self._write_record(record, rnd.started_s, {"consume_s": 0.0})
            return
        job = self._worker.submit(self._consume, rnd.number, uploads)
        self._consuming = _Consuming(record, rnd.started_s, job)

    def _consume(self, number: int, uploads: Mapping[str, bytes]) -> dict[str, Any]:
        """Worker thread: the training step; its record fields and ``consume_s`` (wall seconds it took). If it
        raises, the exception is logged with its traceback and the fields say ``outcome`` "failed" and the
        ``error``; the next round goes on from the last good model (LearningBs rolls a failed joint update back)."""
        start = time.monotonic()
        try:
            learned = self.training.consume(number, uploads)
        except Exception as exc:
            log.exception("round %d: the training step failed; the round is recorded as failed", number)
            return {"outcome": "failed", "error": f"{type(exc).__name__}: {exc}", "consume_s": time.monotonic() - start}
        return {"consume_s": time.monotonic() - start, **learned}

    def _record_consumed(self) -> None:
        """Loop (or stop): the worker finished the training step; write the round's record."""
        consuming, self._consuming = self._consuming, None
        if consuming is not None:
            self._write_record(consuming.record, consuming.started_s, consuming.job.result())

    def _write_record(self, record: dict[str, Any], started_s: float, learned: dict[str, Any]) -> None:
        """Append the round's record (``duration_s``: ROUND_START to now) and schedule the next round."""
        record = {**record, "duration_s": time.monotonic() - started_s, **learned}
        with self.records_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        event(log, "round_finished", **record)
        self.rounds_done += 1
        self._next_round_s = time.monotonic() + self.cfg.bs.round_gap_s

    @staticmethod
    def _downlink_snr_db(server: ControlServer, ue: str) -> float | None:
        """The SNR of the BS's frames in the UE's latest CHANNEL_REPORT (None if it sent none)."""
        rec = server.registry.ues.get(ue)
        return rec.channel.report.snr_db if rec is not None and rec.channel is not None else None

    def _next_job_id(self) -> int:
        self._job_id += 1
        return self._job_id
