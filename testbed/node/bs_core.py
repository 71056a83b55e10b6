"""The BS core: registration, first information, rounds with deadlines, transfers, the joint update, records.

No I/O (STYLE.md #18): a shell calls ``control(event)``, ``radio(event)``, ``job_done(done)`` and ``timers()``
and carries out the returned actions (testbed/node/actions.py). The clock (seconds) and the radio's sample
cursor are injected. The same core runs in the BS daemon (testbed/node/bs.py) and in the in-process engine.

A round (docs/nodes.md): ASSIGN with each live UE's uplink slot, ROUND_START (model SHA-256, size, deadline)
to every live UE, the model broadcast over the radio (object id = round number, repaired from the UEs'
NACKs), each UE's upload received in its TDMA slot and acknowledged, UPLINK_DONE over the control plane.
When every participant is done or gone, or the deadline passes, ROUND_END goes out; the round counts if at
least ``min_fraction`` of its participants finished: their uploads go to the training step (a ``consume``
job); otherwise it is skipped. When the job is done, the round's record goes out and the next round is
scheduled ``round_gap_s`` later; no round starts meanwhile (its model is the step's result).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from testbed.control.config import Event
from testbed.control.protocol import (
    Assign,
    CapabilityEnquiry,
    CapabilityReport,
    ChannelReport,
    Error,
    ModeChoice,
    Nack,
    UplinkDone,
)
from testbed.errors import LinkError
from testbed.link.analog import analog_index
from testbed.link.endpoints import Inbound, Outbound
from testbed.link.framelink import Heard
from testbed.link.messages import SlotGrant, SlotSchedule
from testbed.link.segment import parse
from testbed.link.tdma import cycle_schedule
from testbed.link.tracker import ChannelTracker
from testbed.mode import Mode
from testbed.node.actions import (
    Action,
    Cancel,
    CloseRound,
    JobDone,
    OnAir,
    OpenRound,
    Received,
    Record,
    RoundStatus,
    Send,
    StartJob,
    Transmit,
)
from testbed.node.assigners import Assigner, Orders, UeView
from testbed.node.config import BS_NODE_ID, SOUNDING_OBJECT_ID, AirConfig, BsSection
from testbed.node.exchange import FirstInfoExchange
from testbed.node.runtime import event, repair_timing
from testbed.node.step import BsTraining

log = logging.getLogger(__name__)

SOUNDING_PAYLOAD = bytes(16)


def _applied(rnd: _Round) -> dict[str, Any]:
    """The record's view of the allocation applied: each UE's TX power as its radio applied it, its radio
    energy, ASSIGN's per-round budget and what that budget left of the work (from UPLINK_DONE)."""
    reports = rnd.reports
    return {
        "ue_tx_power_dbm": {ue: r.tx_power_dbm for ue, r in reports.items()},
        "ue_radio_energy_j": {ue: r.radio_energy_j for ue, r in reports.items()},
        "ue_energy_budget_j": {ue: o.energy_budget_j for ue, o in rnd.orders.items()},
        "ue_work": {ue: r.work for ue, r in reports.items()},
        "ue_trained_samples": {ue: r.trained_samples for ue, r in reports.items()},
    }


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
    started_s: float
    started_wall_s: float
    done: set[str] = field(default_factory=set)  # UPLINK_DONE received
    dropped: set[str] = field(default_factory=set)  # participants gone or left during the round
    energy_j: dict[str, float] = field(default_factory=dict)  # UPLINK_DONE's energy_used_j
    compute_s: dict[str, float] = field(default_factory=dict)  # UPLINK_DONE's compute_time_s
    done_s: dict[str, float] = field(default_factory=dict)  # seconds from ROUND_START to each UPLINK_DONE
    reports: dict[str, UplinkDone] = field(default_factory=dict)  # each UE's UPLINK_DONE (applied power, work)
    started_air_s: float = 0.0  # the radio's sample clock at ROUND_START, in seconds
    choices: dict[str, Any] = field(default_factory=dict)  # each UE's accepted MODE_CHOICE
    refused: dict[str, str] = field(default_factory=dict)  # why a UE has no accepted choice this round
    analog: dict[str, dict[int, Heard]] = field(default_factory=dict)  # analog frames heard, by UE and index
    analog_sent: dict[str, int] = field(default_factory=dict)  # UPLINK_DONE's analog_frames


@dataclass(frozen=True)
class _Consuming:
    """A round ended on the control plane whose uploads the training step is consuming."""

    number: int
    record: dict[str, Any]  # the round record as of ROUND_END, without the training step's fields
    started_s: float  # clock at the round's ROUND_START, for duration_s


class BsCore:
    """The BS's behaviour; see the module docstring.

    ``now`` : seconds on the shell's clock (monotonic in the daemon, virtual in the engine). ``cursor`` : the
    radio's sample clock (end of the last block received). ``wall`` : Unix seconds for the record's
    ``started_unix_s``. ``assigner`` : each round's first information and ASSIGN orders
    (testbed/node/assigners.py). ``ue_chooses`` (the UEs run [training]): a round starts only once every live UE
    of [bs.ues] has reported its capability (or has been live for ``capability_wait_s``), has been offered
    FIRST_INFO and has answered with its MODE_CHOICE (or ``capability_wait_s`` passed: it sits the round out).
    Before the first offer the BS sends a sounding burst if it has measured no link to some UE, so every UE
    chooses on a measured channel."""

    def __init__(
        self,
        bs: BsSection,
        air: AirConfig,
        training: BsTraining,
        assigner: Assigner,
        *,
        now: Callable[[], float],
        cursor: Callable[[], int],
        wall: Callable[[], float],
        deadline_s: float | None = None,
        ue_chooses: bool = False,
    ) -> None:
        self.bs, self.air, self.training, self.assigner = bs, air, training, assigner
        self.now, self.cursor, self.wall = now, cursor, wall
        self.deadline_s = bs.deadline_s if deadline_s is None else deadline_s
        self.ue_of_node = {node: ue for ue, node in bs.ues.items()}
        self.node_of_stream = {node & 0xFF: node for node in bs.ues.values()}  # PHY header stream id
        self.tracker = ChannelTracker()  # uplink measurements: every frame heard from each UE
        self.live: set[str] = set()  # UEs with a live registration (from the control plane's events)
        self.ue_chooses = ue_chooses
        self._joined_s: dict[str, float] = {}  # when each live UE (re)joined
        self.capabilities: dict[str, CapabilityReport] = {}  # each UE's latest CAPABILITY_REPORT, kept whole
        self.channels: dict[str, ChannelReport] = {}  # each UE's latest CHANNEL_REPORT (downlink)
        self.rounds_done = 0
        self.round_number = 0  # the last round opened
        self.run_id = ""  # the run this BS belongs to, and how many times it was started in it (the records say)
        self.session = 1
        self.next_round_s = 0.0
        self._round: _Round | None = None
        self._consuming: _Consuming | None = None
        self._job_id = 0
        # first information: what was last sent to each UE, this round's offers and answers, the last choices
        self.exchange = FirstInfoExchange(assigner)
        self._sounding: int | None = None  # job id of the sounding burst until it is on the air
        self._sounded = False
        self._on_event = {"joined": self._joined, "gone": self._gone, "left": self._gone,
                          "round_complete": self._finish, "round_deadline": self._finish,
                          "message": self._message}  # fmt: skip
        self._on_message = {CapabilityReport: self._capability, ChannelReport: self._channel, Nack: self._nack,
                            UplinkDone: self._uplink_done, ModeChoice: self._mode_choice,
                            Error: self._ue_error}  # fmt: skip

    # --- durable state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What the BS knows between rounds, as plain data (a checkpoint): the round counter, the run, and
        every UE's measurements and reports (the policy's inputs)."""
        return {
            "round_number": self.round_number,
            "rounds_done": self.rounds_done,
            "run_id": self.run_id,
            "session": self.session,
            "tracker": self.tracker.state(),
            "channels": {ue: msgspec.to_builtins(r) for ue, r in self.channels.items()},
            "capabilities": {ue: msgspec.to_builtins(r) for ue, r in self.capabilities.items()},
            "first_info_revision": self.exchange.revision,
        }

    def load_state_dict(self, state: Mapping[str, Any], *, next_round_s: float = 0.0) -> None:
        """Continue from ``state`` between rounds: the next round is ``round_number + 1``, not before
        ``next_round_s``. Raises msgspec.ValidationError / KeyError / ValueError on a state that does not fit."""
        self.round_number, self.rounds_done = int(state["round_number"]), int(state["rounds_done"])
        self.run_id, self.session = str(state["run_id"]), int(state["session"])
        self.tracker = ChannelTracker.from_state(state["tracker"])
        self.channels = {ue: msgspec.convert(r, ChannelReport) for ue, r in state["channels"].items()}
        self.capabilities = {ue: msgspec.convert(r, CapabilityReport) for ue, r in state["capabilities"].items()}
        self.exchange.revision = int(state["first_info_revision"])
        self._sounded = bool(self.tracker.links() or self.channels)
        self.next_round_s = next_round_s

    @property
    def waiting_for(self) -> list[str]:
        """Participants of the open round that have not sent UPLINK_DONE and are not gone."""
        rnd = self._round
        return sorted(rnd.participants - rnd.done - rnd.dropped) if rnd is not None else []

    # --- control plane --------------------------------------------------------------------------------
    def control(self, ev: Event) -> list[Action]:
        handler = self._on_event.get(ev.kind)
        return handler(ev) if handler is not None else []

    def _joined(self, ev: Event) -> list[Action]:
        event(log, "ue_joined", ue=ev.ue_id, round=ev.round)
        self.live.add(ev.ue_id)
        self._joined_s[ev.ue_id] = self.now()
        # a (re)joining UE is a new process that has not measured yet: wait for its fresh report, not an old one
        # (a resumed BS restored every UE's report, offered FIRST_INFO at once, and every UE refused it)
        self.capabilities.pop(ev.ue_id, None)
        return [Send(CapabilityEnquiry(), ev.ue_id)] if ev.ue_id in self.bs.ues else []

    def _gone(self, ev: Event) -> list[Action]:
        event(log, f"ue_{ev.kind}", ue=ev.ue_id, round=ev.round)
        self.live.discard(ev.ue_id)
        rnd = self._round
        if rnd is not None:
            rnd.broadcast.forget(ev.ue_id)
            if ev.ue_id in rnd.participants:
                rnd.dropped.add(ev.ue_id)
        return []

    def _message(self, ev: Event) -> list[Action]:
        assert ev.message is not None
        handler = self._on_message.get(type(ev.message.body))
        return handler(ev) if handler is not None else []

    def _capability(self, ev: Event) -> list[Action]:
        cap = self.capabilities[ev.ue_id] = ev.message.body  # type: ignore[union-attr]
        event(log, "capability", ue=ev.ue_id, cycles_per_sample=cap.cycles_per_sample,
              cpu_freq_max_hz=cap.cpu_freq_max_hz, num_local_samples=cap.num_local_samples,
              energy_available_j=cap.energy_available_j)  # fmt: skip
        return []

    def _channel(self, ev: Event) -> list[Action]:
        self.channels[ev.ue_id] = ev.message.body  # type: ignore[union-attr,assignment]
        return []

    def _in_round(self, ev: Event) -> _Round | None:
        rnd = self._round
        return rnd if rnd is not None and ev.message is not None and ev.message.round == rnd.number else None

    def _nack(self, ev: Event) -> list[Action]:
        rnd = self._in_round(ev)
        if rnd is not None:
            rnd.broadcast.add_nack(ev.ue_id, ev.message.body.nack, self.now())  # type: ignore[union-attr]
        return []

    def _uplink_done(self, ev: Event) -> list[Action]:
        rnd = self._in_round(ev)
        if rnd is not None:
            body: UplinkDone = ev.message.body  # type: ignore[union-attr,assignment]
            rnd.done.add(ev.ue_id)
            rnd.energy_j[ev.ue_id], rnd.compute_s[ev.ue_id] = body.energy_used_j, body.compute_time_s
            rnd.analog_sent[ev.ue_id] = body.analog_frames
            rnd.done_s[ev.ue_id] = self.now() - rnd.started_s
            rnd.reports[ev.ue_id] = body
            event(log, "uplink_done", ue=ev.ue_id, round=rnd.number, payload_bytes=body.payload_bytes,
                  compute_time_s=body.compute_time_s)  # fmt: skip
        return []

    def _mode_choice(self, ev: Event) -> list[Action]:
        """A UE's MODE_CHOICE, checked on its figures as the BS holds them now (the CHANNEL_REPORT it sent just
        before is part of what it chose by)."""
        ue, view = ev.ue_id, self.exchange.offered_view(ev.ue_id)
        if view is not None:
            view = UeView(ue, self.capabilities.get(ue), view.uplink_snr_db, self._downlink_snr_db(ue))
        return self.exchange.answer(ue, ev.message.body, view)  # type: ignore[union-attr,arg-type]

    def _ue_error(self, ev: Event) -> list[Action]:
        body: Error = ev.message.body  # type: ignore[union-attr,assignment]
        if body.code == "refused_first_info":
            self.exchange.refused(ev.ue_id, body.detail)
        return []

    # --- radio ------------------------------------------------------------------------------------------
    def radio(self, ev: Received | OnAir) -> list[Action]:
        rnd = self._round
        if isinstance(ev, OnAir):
            if ev.job_id == self._sounding:
                self._sounding = None
            if rnd is not None:
                rnd.broadcast.on_air(ev.job_id, ev.end_sample, self.now())
            return []
        node = self.node_of_stream.get(ev.frame.stream_id)
        if ev.frame.analog:
            return self._analog(rnd, node, ev.frame)
        if node is not None:
            self.tracker.add(node, BS_NODE_ID, ev.frame)
        if rnd is None or ev.frame.payload is None:
            return []
        try:
            head, chunk = parse(ev.frame.payload)
        except LinkError:
            return []
        ue = self.ue_of_node.get(head.src)
        inbound = rnd.uplinks.get(ue) if ue is not None else None
        if inbound is not None and head.object_id == inbound.object_id:
            inbound.offer(head, chunk, ev.start_sample)
        return []

    def _analog(self, rnd: _Round | None, node: int | None, frame: Heard) -> list[Action]:
        """An analog frame of a UE's symbol upload: kept by its index as received (the first copy; a frame of
        another round or from a UE outside the round is dropped). No ARQ: what is missing stays missing."""
        ue = self.ue_of_node.get(node) if node is not None else None
        if rnd is None or ue is None or ue not in rnd.uplinks:
            return []
        index = analog_index(frame.seq, rnd.number)
        if index is not None:
            rnd.analog.setdefault(ue, {}).setdefault(index, frame)
        return []

    # --- timers -----------------------------------------------------------------------------------------
    def timers(self) -> list[Action]:
        rnd = self._round
        if self._consuming is not None:  # the next model is the training step's result: no round before it
            return []
        if rnd is None:
            mapped = sorted(ue for ue in self.live if ue in self.bs.ues)
            if self.now() >= self.next_round_s and len(mapped) >= self.bs.min_ues and self._measured(mapped):
                return self._choose(mapped) if self.ue_chooses else self._start(None)
            return []
        actions: list[Action] = []
        job = rnd.broadcast.next_job(self._next_job_id(), rnd.broadcast_mcs, self.cursor(), self.now(), rnd.downlink)
        if job is not None:
            actions.append(Transmit(job))
            event(log, "broadcast_repair", round=rnd.number, frames=len(job.frames), passes=rnd.broadcast.passes)
        for ue, inbound in rnd.uplinks.items():
            nack = inbound.ack_due() or inbound.nack_due(self.cursor())
            if nack is not None and ue in self.live:
                actions.append(Send(Nack(nack), ue))
        return actions

    def _measured(self, ues: list[str]) -> bool:
        """Every UE has reported its capability, or waited ``capability_wait_s`` (then planned as assumed)."""
        if not self.ue_chooses:
            return True
        missing = [ue for ue in ues if ue not in self.capabilities]
        late = [ue for ue in missing if self.now() - self._joined_s.get(ue, self.now()) >= self.bs.capability_wait_s]
        if missing and len(late) == len(missing):
            log.warning("no CAPABILITY_REPORT from %s within %.0f s of joining: planned as the reference board",
                        ", ".join(sorted(late)), self.bs.capability_wait_s)  # fmt: skip
        return len(late) == len(missing)

    def _schedule(self, slotted: Sequence[str]) -> SlotSchedule:
        """One TDMA cycle: the BS's downlink slot first, then one uplink slot per UE, equal lengths."""
        nodes = [BS_NODE_ID, *(self.bs.ues[ue] for ue in slotted)]
        air = self.air
        return cycle_schedule(air.tdma_cycle_samples, air.guard_samples, nodes, air.max_burst_samples)

    def _view(self, ue: str) -> UeView:
        """The UE's capability and the effective SNRs of its links (channel coefficients through EESM)."""
        uplink = self.tracker.report(self.bs.ues[ue], BS_NODE_ID)
        return UeView(ue, self.capabilities.get(ue), self.air.effective_snr_db(uplink), self._downlink_snr_db(ue))

    def _choose(self, mapped: list[str]) -> list[Action]:
        """Before a round: sound the links if some UE has none measured, offer FIRST_INFO, collect the choices;
        the round starts when every UE answered or ``capability_wait_s`` passed since the offer."""
        if self.exchange.offered_s is None:
            if self._sounding is not None:
                return []  # the sounding burst is not on the air yet
            unmeasured = [ue for ue in mapped if self.tracker.snr_db(self.bs.ues[ue], BS_NODE_ID) is None
                          and ue not in self.channels]  # fmt: skip
            if unmeasured and not self._sounded:
                return self._sound(mapped)
            return self.exchange.offer([self._view(ue) for ue in mapped], self.now())
        waiting = self.exchange.waiting(self.live)
        if waiting and self.now() - self.exchange.offered_s < self.bs.capability_wait_s:
            return []
        if waiting:
            log.warning("no MODE_CHOICE from %s within %.0f s of FIRST_INFO: they sit this round out",
                        ", ".join(waiting), self.bs.capability_wait_s)  # fmt: skip
        return self._start(self.exchange.chosen())

    def _sound(self, ues: list[str]) -> list[Action]:
        """One short broadcast in the BS's slot: each UE measures the downlink from it (CHANNEL_REPORT)."""
        self._sounded = True
        sounding = Outbound(SOUNDING_PAYLOAD, src=BS_NODE_ID, dsts=sorted(self.bs.ues[ue] for ue in ues),
                            object_id=SOUNDING_OBJECT_ID, frame_payload_bytes=self.air.frame_payload_bytes,
                            expect=set(), timing=repair_timing(self.air))  # fmt: skip
        job = sounding.next_job(self._next_job_id(), self.air.slowest_mcs, self.cursor(), self.now(),
                                self._schedule(ues).grant_for(BS_NODE_ID))  # fmt: skip
        if job is None:
            return []
        self._sounding = job.job_id
        event(log, "sounding", ues=ues, mcs=self.air.slowest_mcs)
        return [Transmit(job)]

    def _start(self, chosen: Mapping[str, Mode] | None) -> list[Action]:
        """Open a round: ASSIGN (the modes the UEs chose; None: the assigner's own), the model broadcast."""
        bs, air = self.bs, self.air
        live = sorted(self.live)
        slotted = [ue for ue in live if ue in bs.ues]
        for ue in sorted(set(live) - set(slotted)):
            log.warning("UE %s is not in [bs.ues]: no link node id, no uplink slot", ue)
        schedule = self._schedule(slotted)
        policy = air.mcs_policy
        views = [self._view(ue) for ue in slotted]
        uplink_mcs = {v.ue_id: policy.choose(v.uplink_snr_db) for v in views}  # effective SNR: selectivity counts
        orders = self.assigner.orders(views, chosen)
        choices, refused = self.exchange.close()
        actions: list[Action] = []
        for ue in slotted:
            o, grant = orders[ue], schedule.grant_for(bs.ues[ue])
            assign = Assign(o.mode, o.group, o.tx_power_dbm, o.energy_budget_j, o.cpu_freq_hz, uplink_mcs[ue], grant)
            actions.append(Send(assign, ue))
        downlink_snrs = [self._downlink_snr_db(ue) for ue in slotted]  # the broadcast serves the weakest
        broadcast_mcs = policy.choose(None if None in downlink_snrs else min(downlink_snrs))  # type: ignore[type-var]
        number = self.round_number = self.round_number + 1
        model = self.training.model_bytes(number, orders, views)
        actions.append(OpenRound(number, hashlib.sha256(model).digest(), len(model), self.deadline_s))
        participants = frozenset(live)  # the control plane opens the round for every live UE
        receivers = {ue: bs.ues[ue] for ue in participants if ue in bs.ues}
        object_id = number & 0xFFFFFFFF
        broadcast = Outbound(model, src=BS_NODE_ID, dsts=sorted(receivers.values()), object_id=object_id,
                             frame_payload_bytes=air.frame_payload_bytes, expect=set(receivers),
                             timing=repair_timing(air, bs.nack_gather_s))  # fmt: skip
        uplinks = {ue: Inbound(BS_NODE_ID, src=node, object_id=object_id, timing=repair_timing(air),
                               since_sample=self.cursor(), nack_blind=False)
                   for ue, node in receivers.items()}  # fmt: skip
        downlink = schedule.grant_for(BS_NODE_ID)
        self._round = _Round(number, model, participants, broadcast, uplinks, downlink, broadcast_mcs, uplink_mcs,
                             orders, self.now(), self.wall(), started_air_s=self.cursor() / air.sample_rate_hz,
                             choices=choices, refused=refused)  # fmt: skip
        first = broadcast.next_job(self._next_job_id(), broadcast_mcs, self.cursor(), self.now(), downlink)
        if first is not None:
            actions.append(Transmit(first))
        event(log, "round_started", round=number, participants=sorted(participants), model_bytes=len(model),
              frames=broadcast.count, deadline_s=self.deadline_s, mcs=broadcast_mcs)  # fmt: skip
        return actions

    def _finish(self, ev: Event) -> list[Action]:
        rnd = self._round
        if rnd is None or ev.round != rnd.number:
            return []
        actions: list[Action] = [Cancel(job_id) for job_id in rnd.broadcast.job_ids]  # repairs of no use now
        uploads = {}
        for ue in sorted(rnd.done):
            if ue in rnd.reports and rnd.reports[ue].work == "declined":
                continue  # its energy budget did not cover the round: no upload, the learning counts it late
            try:
                uploads[ue] = rnd.uplinks[ue].deliver()
            except (KeyError, LinkError) as exc:
                log.error("UE %s reported UPLINK_DONE but its upload is not verified here: %s", ue, exc)
        outcome, status = round_outcome(len(rnd.participants), len(uploads), self.bs.min_fraction)
        actions.append(CloseRound(status))
        self._round = None
        record = {
            "round": rnd.number,
            "run_id": self.run_id,
            "bs_session": self.session,
            "outcome": outcome,
            "trigger": ev.kind,
            "participants": sorted(rnd.participants),
            "done": sorted(uploads),
            "dropped": sorted(rnd.dropped),
            "model_bytes": len(rnd.model),
            "model_sha256": hashlib.sha256(rnd.model).hexdigest(),
            "uploads": {ue: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for ue, d in uploads.items()},
            "broadcast_mcs": rnd.broadcast_mcs,
            "uplink_mcs": rnd.uplink_mcs,
            "broadcast_passes": rnd.broadcast.passes,
            "broadcast_frames_sent": rnd.broadcast.frames_sent,
            "uplink_nacks_sent": {ue: i.nacks_sent for ue, i in rnd.uplinks.items()},
            "uplink_snr_db": {ue: self.tracker.snr_db(self.bs.ues[ue], BS_NODE_ID) for ue in rnd.uplinks},
            "uplink_effective_snr_db": {ue: self._view(ue).uplink_snr_db for ue in rnd.uplinks},
            "downlink_snr_db": {ue: self._downlink_snr_db(ue) for ue in rnd.uplinks},
            "modes": {ue: o.mode for ue, o in rnd.orders.items()},
            "choices": rnd.choices,
            "choices_refused": rnd.refused,
            "first_info_revision": self.exchange.revision,
            "ue_energy_j": dict(rnd.energy_j),
            "ue_compute_s": dict(rnd.compute_s),
            "uplink_done_s": dict(rnd.done_s),
            **_applied(rnd),
            "analog": _analog_record(rnd),
            "started_unix_s": rnd.started_wall_s,
            "air_started_s": rnd.started_air_s,
        }
        event(log, "round_ended", round=rnd.number, outcome=outcome, status=status, consume=outcome != "skipped")
        if outcome == "skipped":
            return [*actions, *self._recorded(record, rnd.started_s, {"consume_s": 0.0})]
        self._consuming = _Consuming(rnd.number, record, rnd.started_s)
        analog = {ue: rnd.analog.get(ue, {}) for ue in uploads}
        consume = StartJob("consume", ("consume", rnd.number), lambda: self._consume(rnd.number, uploads, analog))
        return [*actions, consume]

    def _consume(
        self, number: int, uploads: Mapping[str, bytes], analog: Mapping[str, Mapping[int, Heard]]
    ) -> dict[str, Any]:
        """Off the loop: the training step's record fields. If it raises, the exception is logged with its
        traceback and the fields say ``outcome`` "failed" and the ``error``; the next round goes on from the last
        good model (LearningBs rolls a failed joint update back)."""
        try:
            return self.training.consume(number, uploads, analog)
        except Exception as exc:
            log.exception("round %d: the training step failed; the round is recorded as failed", number)
            return {"outcome": "failed", "error": f"{type(exc).__name__}: {exc}"}

    def job_done(self, done: JobDone) -> list[Action]:
        """The training step finished: the round's record, and the next round scheduled."""
        consuming = self._consuming
        if consuming is None or done.key != ("consume", consuming.number):
            return []
        self._consuming = None
        return self._recorded(consuming.record, consuming.started_s, {"consume_s": done.elapsed_s, **done.result})

    def _recorded(self, record: dict[str, Any], started_s: float, learned: dict[str, Any]) -> list[Action]:
        """The round's record (``duration_s``: ROUND_START to now on the shell's clock; ``air_clock_s``: the
        radio's sample clock, the air's own time, now); the next round ``round_gap_s`` from now."""
        air_s = self.cursor() / self.air.sample_rate_hz
        record = {**record, "duration_s": self.now() - started_s, "air_clock_s": air_s, **learned}
        event(log, "round_finished", **record)
        self.rounds_done += 1
        self.next_round_s = self.now() + self.bs.round_gap_s
        return [Record(record)]

    def _downlink_snr_db(self, ue: str) -> float | None:
        """The effective SNR of the BS's frames in the UE's latest CHANNEL_REPORT (None if it sent none)."""
        rep = self.channels.get(ue)
        return self.air.effective_snr_db(rep.report) if rep is not None else None

    def _next_job_id(self) -> int:
        self._job_id += 1
        return self._job_id


def _analog_record(rnd: _Round) -> dict[str, dict[str, Any]]:
    """Per UE that sent or was heard sending analog frames: frames sent (its UPLINK_DONE; None without one)
    and received, and the receiver's mean noise-variance estimate of the received values at the unit power
    they were sent at, with the symbol SNR it implies (None when no frame arrived)."""
    out = {}
    for ue in sorted({ue for ue, n in rnd.analog_sent.items() if n} | set(rnd.analog)):
        frames = rnd.analog.get(ue, {})
        noise = [h.noise_var for h in frames.values() if h.noise_var is not None and h.noise_var > 0]
        mean = float(np.mean(noise)) if noise else None
        out[ue] = {
            "frames_sent": rnd.analog_sent.get(ue),
            "frames_received": len(frames),
            "noise_var": mean,
            "snr_db": None if mean is None else -10.0 * math.log10(mean),
        }
    return out
