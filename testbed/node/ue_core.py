"""The UE core: capability reports, ASSIGN applied, the model download, the training step, the upload.

No I/O (STYLE.md #18): a shell calls ``control(event)``, ``radio(event)``, ``job_done(done)`` and ``timers()``
and carries out the returned actions (testbed/node/actions.py); the clock and the radio's sample cursor are
injected. The same core runs in the UE daemon (testbed/node/ue.py) and in the in-process engine.

Before a round the BS sends FIRST_INFO (the policy and this UE's allocation): the UE reports its downlink
measurement (CHANNEL_REPORT: per-subcarrier coefficients; the BS sounds the links before a first round),
applies the policy to its own figures and answers MODE_CHOICE, or ERROR refused_first_info with the reason
(it keeps the last valid one). A FIRST_INFO that arrives before the UE has heard the BS waits for the first
frame from it, at most ``CHOICE_WAIT_S``.

Per round: ASSIGN gives the mode, the uplink slot and MCS; ROUND_START gives the model's SHA-256, size and deadline;
the model arrives over the radio (object id = round number), NACKed after silence and acknowledged once its
SHA-256 matches; the training step (a ``train`` job, through the UE's own measured downlink SNR) turns it into
the upload, which goes out in the UE's TDMA slot of every cycle until the BS acknowledges it (a symbol upload:
its analog frames first, each once, then their digital index); then UPLINK_DONE. A UE that (re)joins during a round
is not a participant: it waits for the next ROUND_START. A round dropped while its job runs (ROUND_END, a new
ROUND_START, BS gone) forgets the job, so a late result is discarded, never uploaded.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec
import numpy as np

from testbed.control.config import Event
from testbed.control.protocol import (
    Assign,
    CapabilityEnquiry,
    CapabilityReport,
    ChannelReport,
    Error,
    FirstInfo,
    Nack,
    RoundEnd,
    RoundStart,
    UplinkDone,
)
from testbed.errors import LearningError, LinkError, PolicyError
from testbed.link.airtime import LinkAirtime
from testbed.link.analog import ANALOG_MCS, analog_seq, frame_num_samples
from testbed.link.endpoints import Inbound, Outbound
from testbed.link.messages import ChannelReport as LinkChannelReport
from testbed.link.placement import Job
from testbed.link.segment import HEADER_BYTES, frame_count, parse
from testbed.link.tracker import ChannelTracker
from testbed.node.actions import (
    Action,
    Cancel,
    CancelJob,
    JobDone,
    OnAir,
    Received,
    Send,
    SetTxPower,
    StartJob,
    Transmit,
    TxPowerSet,
)
from testbed.node.config import BS_NODE_ID, SOUNDING_OBJECT_ID, AirConfig
from testbed.node.first_info import UeFirstInfo
from testbed.node.runtime import event, repair_timing
from testbed.node.step import UeLink, UeTraining
from testbed.policy.budget import WorkAction, WorkOption, WorkPlan, priced_frames

log = logging.getLogger(__name__)

EARLY_OBJECTS = 2  # broadcast objects heard before their ROUND_START that are kept
CHOICE_WAIT_S = 2.0  # how long a FIRST_INFO waits for a first frame from the BS before the UE chooses unmeasured


@dataclass(frozen=True)
class Trained:
    """A finished training step: the upload, and the step's ``UeTraining.last_work`` (samples, fraction of a
    full step per sample), for the energy account (and for a shell that models compute time)."""

    round: int
    data: bytes
    work: tuple[int, float]
    plan: WorkPlan | None = None  # what the energy budget left of the round (None: no budget to keep)
    analog: tuple[np.ndarray, ...] = ()  # a symbol upload's analog frames, (n,) complex64 each


@dataclass
class _Round:
    number: int
    digest: bytes
    download: Inbound
    training: bool = False  # the train job was started
    upload: Outbound | None = None
    compute_time_s: float = 0.0
    work: tuple[int, float] = (0, 1.0)
    assign: Assign | None = None  # the orders this round's upload was computed under
    tx_power_dbm: float | None = None  # the radio's applied TX power when training started
    plan: WorkPlan | None = None
    reported: bool = False  # UPLINK_DONE sent
    analog: tuple[np.ndarray, ...] = ()  # analog frames to send once, before the upload
    analog_job: int | None = None  # their radio job, once handed out


def control_bounds(report: LinkChannelReport) -> LinkChannelReport:
    """The report with its figures clipped to CHANNEL_REPORT's bounds (docs/control-protocol.md), so an
    extreme measurement (a noiseless simulated link) is reported as the bound instead of refused."""
    gain = report.mean_gain_db
    return msgspec.structs.replace(
        report,
        snr_db=min(max(report.snr_db, -50.0), 80.0),
        cfo_hz=min(max(report.cfo_hz, -1e6), 1e6),
        mean_gain_db=None if gain is None else min(max(gain, -200.0), 100.0),
    )


class UeCore:
    """A UE agent's behaviour; see the module docstring.

    ``first_info`` (with [training]): capability reports at registration and on CAPABILITY_ENQUIRY, ASSIGN's
    CPU frequency applied, energy per round against the budget."""

    def __init__(
        self,
        ue_id: str,
        node_id: int,
        air: AirConfig,
        training: UeTraining,
        first_info: UeFirstInfo | None,
        *,
        now: Callable[[], float],
        cursor: Callable[[], int],
        airtime: LinkAirtime | None = None,
    ) -> None:
        self.ue_id, self.node_id, self.air, self.training, self.first_info = ue_id, node_id, air, training, first_info
        self.now, self.cursor = now, cursor
        self.airtime = airtime or air.airtime(1)  # the link's burst lengths (they do not depend on the UE count)
        self.registered = False
        self.rounds_done = 0
        self.assign: Assign | None = None
        self.tx_power_dbm: float | None = None  # what the radio applied of the latest ASSIGN's power
        self.tracker = ChannelTracker()  # downlink measurements: every frame heard from the BS
        self._round: _Round | None = None
        self._early: dict[int, Inbound] = {}
        self._job_id = 0
        self._measurements = 0
        self._capability: str | CapabilityReport = "none"  # "none" | "measuring" | a report not yet sent
        self._on_event = {"registered": self._registration, "gone": self._registration, "message": self._message}
        self._first_info: tuple[FirstInfo, float] | None = None  # a FIRST_INFO waiting for a measured link
        self._on_message = {CapabilityEnquiry: self._enquiry, Assign: self._assign, RoundStart: self._round_start,
                            Nack: self._nack, RoundEnd: self._round_end, FirstInfo: self._offered,
                            Error: self._refused}  # fmt: skip

    # --- control plane --------------------------------------------------------------------------------
    def control(self, ev: Event) -> list[Action]:
        handler = self._on_event.get(ev.kind)
        return handler(ev) if handler is not None else []

    def _registration(self, ev: Event) -> list[Action]:
        event(log, f"bs_{ev.kind}", round=ev.round)
        self.registered = ev.kind == "registered"
        actions = self._drop_round()  # a new registration takes part from the next ROUND_START only
        if self.registered:
            actions += self._measure_capability()  # first information, unasked, at start-up
        return actions

    def _message(self, ev: Event) -> list[Action]:
        assert ev.message is not None
        handler = self._on_message.get(type(ev.message.body))
        return handler(ev) if handler is not None else []

    def _enquiry(self, ev: Event) -> list[Action]:
        return self._measure_capability()

    def _offered(self, ev: Event) -> list[Action]:
        self._first_info = (ev.message.body, self.now())  # type: ignore[union-attr,assignment]
        return self._choose()

    def _choose(self, *, unmeasured_ok: bool = False) -> list[Action]:
        """Answer the waiting FIRST_INFO: the downlink report, then MODE_CHOICE (or the refusal)."""
        if self._first_info is None:
            return []
        msg, _ = self._first_info
        report = self.tracker.report(BS_NODE_ID, self.node_id)
        if report is None and msg.uplink_snr_db is None and not unmeasured_ok:
            return []  # not heard the BS yet: timers() answers once it has, or after CHOICE_WAIT_S
        self._first_info = None
        if self.first_info is None:
            detail = "this UE runs no [training]: it has no capability to choose by"
            return [Send(Error("refused_first_info", detail))]
        actions: list[Action] = []
        downlink = None
        if report is not None:
            report = control_bounds(report)
            actions.append(Send(ChannelReport(report)))
            downlink = self.air.effective_snr_db(report)
        try:
            choice = self.first_info.choose(msg, downlink)
        except PolicyError as exc:
            log.warning("FIRST_INFO revision %d refused: %s", msg.revision, exc)
            return [*actions, Send(Error("refused_first_info", str(exc)[:256]))]
        event(log, "mode_chosen", revision=msg.revision, rule=msg.rule, threshold=msg.capability_threshold,
              mode=choice.mode, group=choice.group, capability=choice.capability, channel_snr_db=choice.channel_snr_db,
              channel_source=choice.channel_source, reason=choice.reason)  # fmt: skip
        return [*actions, Send(choice)]

    def _refused(self, ev: Event) -> list[Action]:
        body: Error = ev.message.body  # type: ignore[union-attr,assignment]
        if body.code == "inconsistent_choice":
            log.error("the BS refused this UE's MODE_CHOICE: %s", body.detail)
        return []

    def _assign(self, ev: Event) -> list[Action]:
        body: Assign = ev.message.body  # type: ignore[union-attr,assignment]
        if body.uplink_slot.node_id != self.node_id:
            log.error("ASSIGN grants a slot to node %d; this UE is node %d (check [bs.ues] and [ue].node_id)",
                      body.uplink_slot.node_id, self.node_id)  # fmt: skip
            return []
        self.assign = body
        freq = self.first_info.apply(body) if self.first_info is not None else None
        event(log, "assigned", round=ev.message.round, mode=body.mode, group=body.group, mcs=body.mcs,  # type: ignore[union-attr]
              cpu_freq_hz=freq, tx_power_dbm=body.tx_power_dbm)  # fmt: skip
        return self._apply_tx_power(body)

    def _round_start(self, ev: Event) -> list[Action]:
        body: RoundStart = ev.message.body  # type: ignore[union-attr,assignment]
        number = ev.round
        download = self._early.pop(number & 0xFFFFFFFF, None) or self._download(number & 0xFFFFFFFF, self.cursor())
        self._early.clear()
        actions = self._drop_round()
        self._round = _Round(number, body.model_digest, download)
        event(log, "round_started", round=number, model_bytes=body.model_size_bytes, deadline_s=body.deadline_s)
        return actions

    def _nack(self, ev: Event) -> list[Action]:
        rnd = self._round
        if rnd is not None and rnd.upload is not None and ev.round == rnd.number:
            rnd.upload.add_nack("bs", ev.message.body.nack, self.now())  # type: ignore[union-attr]
        return []

    def _round_end(self, ev: Event) -> list[Action]:
        rnd = self._round
        if rnd is None or ev.round != rnd.number:
            return []
        event(log, "round_ended", round=rnd.number, status=ev.message.body.status, uploaded=rnd.reported)  # type: ignore[union-attr]
        self.rounds_done += 1
        return self._drop_round()

    # --- radio ------------------------------------------------------------------------------------------
    def radio(self, ev: Received | OnAir | TxPowerSet) -> list[Action]:
        rnd = self._round
        if isinstance(ev, TxPowerSet):
            return self._tx_power_set(ev)
        if isinstance(ev, OnAir):
            if rnd is not None and rnd.upload is not None:
                rnd.upload.on_air(ev.job_id, ev.end_sample, self.now())
            return []
        if ev.frame.analog:
            return []  # the UEs send analog frames; the BS does not
        if ev.frame.stream_id == BS_NODE_ID & 0xFF:
            self.tracker.add(BS_NODE_ID, self.node_id, ev.frame)
        if ev.frame.payload is None:
            return []
        try:
            head, chunk = parse(ev.frame.payload)
        except LinkError:
            return []
        if head.src != BS_NODE_ID or head.object_id == SOUNDING_OBJECT_ID:
            return []
        if rnd is not None and head.object_id == rnd.download.object_id:
            rnd.download.offer(head, chunk, ev.start_sample)
            return []
        inbound = self._early.get(head.object_id)
        if inbound is None:
            while len(self._early) >= EARLY_OBJECTS:
                self._early.pop(next(iter(self._early)))
            inbound = self._early[head.object_id] = self._download(head.object_id, ev.start_sample)
        inbound.offer(head, chunk, ev.start_sample)
        return []

    def _download(self, object_id: int, since_sample: int) -> Inbound:
        """The receiving end of the BS's broadcast ``object_id``; it NACKs blind (the UE expects the model)."""
        return Inbound(self.node_id, src=BS_NODE_ID, object_id=object_id, timing=repair_timing(self.air),
                       since_sample=since_sample, nack_blind=True)  # fmt: skip

    # --- timers -----------------------------------------------------------------------------------------
    def timers(self) -> list[Action]:
        if not self.registered:
            return []
        actions = self._send_capability()
        if self._first_info is not None:
            actions += self._choose(unmeasured_ok=self.now() - self._first_info[1] >= CHOICE_WAIT_S)
        rnd = self._round
        if rnd is None:
            return actions
        nack = rnd.download.ack_due() or rnd.download.nack_due(self.cursor())
        if nack is not None:
            actions.append(Send(Nack(nack)))
        if rnd.download.complete and not rnd.training:
            report = self.tracker.report(BS_NODE_ID, self.node_id)
            if report is not None:
                actions.append(Send(ChannelReport(control_bounds(report))))
            actions += self._start_training(rnd)
        assign = rnd.assign
        if rnd.upload is None or assign is None:
            return actions
        if rnd.analog and rnd.analog_job is None:
            actions.append(self._send_analog(rnd, assign))
        job = rnd.upload.next_job(self._next_job_id(), assign.mcs, self.cursor(), self.now(), assign.uplink_slot)
        if job is not None:
            actions.append(Transmit(job))
        if rnd.upload.delivered and not rnd.reported:
            actions.append(self._uplink_done(rnd))
        elif rnd.upload.budget_spent and not rnd.reported:  # repairs used up the budget: stop, say so
            actions.append(self._uplink_done(rnd, "declined"))
        return actions

    def _send_analog(self, rnd: _Round, assign: Assign) -> Transmit:
        """The symbol upload's analog frames, once each in the UE's slot ahead of its digital index (no ARQ:
        the BS trains on what arrives); the PHY header seq names the round and the frame."""
        rnd.analog_job = self._next_job_id()
        frames = [(analog_seq(rnd.number, i), f) for i, f in enumerate(rnd.analog)]
        event(log, "analog_frames", round=rnd.number, frames=len(frames), symbols=sum(f.size for f in rnd.analog))
        return Transmit(Job(rnd.analog_job, frames, ANALOG_MCS, assign.uplink_slot))

    def _start_training(self, rnd: _Round) -> list[Action]:
        """The model is verified (its own SHA-256); check it is the one ROUND_START announced, then start the
        training step."""
        rnd.training = True
        model = rnd.download.deliver()
        if hashlib.sha256(model).digest() != rnd.digest:
            log.error("round %d: the broadcast model does not match ROUND_START's SHA-256; skipping", rnd.number)
            self._round = None
            return []
        if self.assign is None:
            log.error("round %d: no ASSIGN received, so no mode; skipping the round", rnd.number)
            self._round = None
            return []
        rnd.assign = assign = self.assign
        rnd.tx_power_dbm = power = self.tx_power_dbm if self.tx_power_dbm is not None else assign.tx_power_dbm
        number = rnd.number
        link = UeLink(self.tracker.snr_db(BS_NODE_ID, self.node_id), self.air.analog_frame_symbols)
        event(log, "model_received", round=number, model_bytes=len(model), mode=assign.mode, link_snr_db=link.snr_db)
        return [StartJob("train", ("train", number), lambda: self._train(number, model, assign, power, link))]

    def _train(self, number: int, model: bytes, assign: Assign, tx_power_dbm: float, link: UeLink) -> Trained | None:
        """Off the loop: the work the energy budget allows (``_plan_work``), then the training step through the
        UE's own measured link; None if it failed (logged: the round is skipped, the loop goes on)."""
        try:
            plan = self._plan_work(model, assign, tx_power_dbm)
            if plan is not None and plan.option is None:
                return Trained(number, b"", (0, 1.0), plan)  # declined: no training, no upload
            steps = plan.option.local_steps if plan is not None and plan.action == "reduced" else None
            data = self.training.upload_bytes(number, model, assign, local_steps=steps, link=link)
        except LearningError as exc:
            log.error("round %d: the model cannot be used (%s); skipping the round", number, exc)
            return None
        except Exception:
            log.exception("round %d: the training step failed; skipping the round", number)
            return None
        return Trained(number, data, self.training.last_work, plan, self.training.last_analog)

    def job_done(self, done: JobDone) -> list[Action]:
        handler = {"train": self._trained, "capability": self._measured}.get(done.key[0])
        return handler(done) if handler is not None else []

    def _trained(self, done: JobDone) -> list[Action]:
        """This round's step finished: queue the upload (or skip the round if it failed)."""
        rnd, trained = self._round, done.result
        if rnd is None or done.key != ("train", rnd.number) or rnd.upload is not None:
            return []  # a dropped round's result
        if trained is None:
            self._round = None
            return []
        rnd.compute_time_s, rnd.work, rnd.plan, rnd.analog = done.elapsed_s, trained.work, trained.plan, trained.analog
        if trained.plan is not None and trained.plan.option is None:
            rnd.reported = True  # declined: the BS hears it at once, and counts this UE as absent
            event(log, "round_declined", round=rnd.number, predicted_energy_j=trained.plan.energy_j,
                  energy_budget_j=rnd.assign.energy_budget_j if rnd.assign else None)  # fmt: skip
            return [Send(UplinkDone(rnd.download.object_id, 0, 0, 0.0, 0.0, rnd.tx_power_dbm, 0.0, "declined", 0))]
        rnd.upload = Outbound(trained.data, src=self.node_id, dsts=[BS_NODE_ID], object_id=rnd.download.object_id,
                              frame_payload_bytes=self.air.frame_payload_bytes, timing=repair_timing(self.air),
                              expect={"bs"})  # fmt: skip
        rnd.upload.max_frames_sent = self._frames_in_budget(rnd)
        event(log, "trained", round=rnd.number, upload_bytes=len(trained.data), compute_time_s=done.elapsed_s)
        return []

    # --- the allocation applied: TX power and energy budget ------------------------------------------------
    def _apply_tx_power(self, assign: Assign) -> list[Action]:
        """ASSIGN's TX power to the radio, every round; the shell answers with what the radio applied (until
        then this round is planned and charged at ASSIGN's power, not at an earlier round's)."""
        self.tx_power_dbm = None
        return [SetTxPower(assign.tx_power_dbm)]

    def _tx_power_set(self, ev: TxPowerSet) -> list[Action]:
        self.tx_power_dbm = ev.applied_dbm
        event(log, "tx_power_set", requested_dbm=ev.requested_dbm, applied_dbm=ev.applied_dbm)
        return []

    def _plan_work(self, model: bytes, assign: Assign, tx_power_dbm: float) -> WorkPlan | None:
        """Off the loop: the most work ASSIGN's energy budget allows at the applied clock and TX power (None
        without [training]: no energy model); an upload priced as its frames plus the repair reserve, and its
        analog frames' exact bursts (sent once)."""
        if self.first_info is None:
            return None
        chunk, per_frame = self.air.frame_payload_bytes - HEADER_BYTES, self.air.analog_frame_symbols

        def airtime_s(o: WorkOption) -> float:
            full, rest = divmod(o.analog_values, per_frame)
            sizes = [per_frame] * full + ([rest] if rest else [])
            return self._airtime_s(assign.mcs, priced_frames(frame_count(o.upload_bytes, chunk)), sizes)

        return self.first_info.plan_work(self.training.work_options(model, assign), assign, tx_power_dbm, airtime_s)

    def _frames_in_budget(self, rnd: _Round) -> int | None:
        """Frames the round's budget leaves for the upload after its compute (None without a budget plan)."""
        if self.first_info is None or rnd.plan is None or rnd.assign is None or rnd.tx_power_dbm is None:
            return None
        samples, fraction = rnd.work
        compute_j, _ = self.first_info.energy_j(samples, fraction, 0.0, rnd.tx_power_dbm)
        _, frame_j = self.first_info.energy_j(0, 1.0, self._airtime_s(rnd.assign.mcs, 1.0), rnd.tx_power_dbm)
        return max(0, math.floor((rnd.assign.energy_budget_j - compute_j) / frame_j)) if frame_j > 0 else None

    def _uplink_done(self, rnd: _Round, work: WorkAction | None = None) -> Send:
        """UPLINK_DONE for an upload: its frames, the round's energy at the applied power and clock, the
        power, and what the budget left of the work (``work`` "declined": the budget ran out mid-upload)."""
        rnd.reported = True
        up = rnd.upload
        assert up is not None
        energy = self._account(rnd)
        used_j = energy.get("compute_energy_j", 0.0) + energy.get("radio_energy_j", 0.0)
        work = work or (rnd.plan.action if rnd.plan is not None else "full")
        event(log, "uplink_done", round=rnd.number, payload_bytes=up.payload_bytes, passes=up.passes, work=work,
              **energy)  # fmt: skip
        radio_j = float(energy.get("radio_energy_j", 0.0))
        return Send(UplinkDone(up.object_id, up.frames_sent, up.payload_bytes, rnd.compute_time_s, used_j,
                               rnd.tx_power_dbm, radio_j, work, rnd.work[0], len(rnd.analog)))  # fmt: skip

    # --- capability -------------------------------------------------------------------------------------
    def _measure_capability(self) -> list[Action]:
        """Start a capability measurement (nothing without [training]: there is no model to time); one running,
        or finished but not yet sent, answers this request too."""
        if self.first_info is None:
            return []
        if self._capability != "none":
            log.debug("capability measurement already under way; not queued again")
            return []
        self._capability = "measuring"
        self._measurements += 1
        return [StartJob("capability", ("capability", self._measurements), self._capability_report)]

    def _capability_report(self) -> CapabilityReport | None:
        """Off the loop: measure and build CAPABILITY_REPORT; None if that failed (logged)."""
        assert self.first_info is not None
        try:
            return self.first_info.capability()
        except PolicyError as exc:
            log.error("capability not measured: %s", exc)
        except Exception:
            log.exception("capability measurement failed; no CAPABILITY_REPORT sent")
        return None

    def _measured(self, done: JobDone) -> list[Action]:
        self._capability = done.result if done.result is not None else "none"
        return self._send_capability() if self.registered else []

    def _send_capability(self) -> list[Action]:
        report = self._capability
        if not isinstance(report, CapabilityReport):
            return []
        self._capability = "none"
        event(log, "capability_sent", cycles_per_sample=report.cycles_per_sample,
              cpu_freq_max_hz=report.cpu_freq_max_hz, num_local_samples=report.num_local_samples)  # fmt: skip
        return [Send(report)]

    # --- bookkeeping ------------------------------------------------------------------------------------
    def _account(self, rnd: _Round) -> dict[str, float | bool]:
        """Energy of the round (compute at the applied clock, uplink airtime at the applied power), against the
        budget; airtime = frames sent x a full frame's burst at the round's MCS (link.airtime; an upper bound),
        plus the analog frames' exact bursts."""
        if self.first_info is None or rnd.assign is None or rnd.upload is None or rnd.tx_power_dbm is None:
            return {}
        airtime_s = self._airtime_s(rnd.assign.mcs, rnd.upload.frames_sent, [f.size for f in rnd.analog])
        samples, fraction = rnd.work
        return self.first_info.account(samples, fraction, airtime_s, rnd.assign, rnd.tx_power_dbm)

    def _airtime_s(self, mcs: str, frames: float, analog_sizes: Iterable[int] = ()) -> float:
        """Seconds on the air of ``frames`` full digital frames at ``mcs`` (link.airtime) and of analog frames
        of ``analog_sizes`` values each (their exact bursts)."""
        analog = sum(frame_num_samples(self.air.phy, n, ANALOG_MCS) for n in analog_sizes)
        return frames * self.airtime.burst_s(self.air.frame_payload_bytes, mcs) + analog / self.air.sample_rate_hz

    def _drop_round(self) -> list[Action]:
        """Forget the current round: its uplink frames not yet on the air are cancelled, and so is its training
        step if it has not started (one that is running finishes and its result is discarded)."""
        rnd, self._round = self._round, None
        if rnd is None:
            return []
        actions: list[Action] = [Cancel(rnd.analog_job)] if rnd.analog_job is not None else []
        if rnd.upload is not None:
            actions += [Cancel(job_id) for job_id in rnd.upload.job_ids]
        elif rnd.training:
            actions.append(CancelJob(("train", rnd.number)))
        return actions

    def _next_job_id(self) -> int:
        self._job_id += 1
        return self._job_id
