"""The UE daemon (``testbed ue --config FILE``): control client, radio pump and its part of each round.

One event loop, like the BS (STYLE.md #13). Per round: ASSIGN gives the uplink slot and MCS; ROUND_START
gives the model's SHA-256, size and deadline; the model arrives over the radio (object id = round number),
NACKed after silence and acknowledged once its SHA-256 matches; the training step turns it into the upload,
which goes out in the UE's TDMA slot of every cycle until the BS acknowledges it; then UPLINK_DONE.
A UE that (re)joins during a round is not a participant: it waits for the next ROUND_START.

The training step and the capability measurement run in one worker thread, so the loop keeps sending
heartbeats and serving NACKs while they compute (torch releases the GIL in its ops). The loop submits a job
and picks up the finished future in its timers; a round dropped meanwhile (ROUND_END, a new ROUND_START, BS
gone) forgets its job, so a late result is discarded, never uploaded.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

import msgspec

from testbed.control.client import ControlClient
from testbed.control.config import Event
from testbed.control.protocol import (
    Assign,
    CapabilityEnquiry,
    CapabilityReport,
    ChannelReport,
    Nack,
    RoundEnd,
    RoundStart,
    UplinkDone,
)
from testbed.errors import LearningError, LinkError, PolicyError
from testbed.link.endpoints import Inbound, Outbound
from testbed.link.messages import ChannelReport as LinkChannelReport
from testbed.link.segment import parse
from testbed.link.tracker import ChannelTracker
from testbed.node.config import BS_NODE_ID, UeConfig
from testbed.node.first_info import UeFirstInfo
from testbed.node.pump import Failed, OnAir, RadioPump, Received
from testbed.node.runtime import event, radio_factory, radio_running, repair_timing
from testbed.node.sdnotify import Notifier
from testbed.node.training import UeTraining
from testbed.phy.layout import burst_num_samples
from testbed.policy.capability import measurement_clock

log = logging.getLogger(__name__)

POLL_S = 0.02
EARLY_OBJECTS = 2  # broadcast objects heard before their ROUND_START that are kept


@dataclass(frozen=True)
class _Trained:
    """A finished training step (worker thread -> loop)."""

    round: int
    data: bytes
    compute_time_s: float  # measurement_clock() around the step, in the worker
    work: tuple[int, float]  # the step's UeTraining.last_work: (samples, fraction of a full step per sample)


@dataclass
class _Round:
    number: int
    digest: bytes
    download: Inbound
    job: Future[_Trained | None] | None = None  # the training step in the worker
    upload: Outbound | None = None
    compute_time_s: float = 0.0
    work: tuple[int, float] = (0, 1.0)  # the step's UeTraining.last_work, for the energy account
    assign: Assign | None = None  # the orders this round's upload was computed under
    reported: bool = False  # UPLINK_DONE sent


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


class UeDaemon:
    """A UE agent: ``run()`` serves until ``stop`` is set; returns the exit code.

    ``first_info`` (with [training]): capability reports at registration and on CAPABILITY_ENQUIRY, ASSIGN's
    CPU frequency applied, energy per round against the budget."""

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
        self.rounds_done = 0
        self._assign: Assign | None = None
        self._round: _Round | None = None
        self._early: dict[int, Inbound] = {}
        self.tracker = ChannelTracker()  # downlink measurements: every frame heard from the BS
        self._job_id = 0
        # training steps and capability measurements, one at a time; its thread starts at the first job
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{cfg.ue.ue_id}-worker")
        self._capability: Future[CapabilityReport | None] | None = None  # measured or measuring, not yet sent

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
        try:
            return self._loop(client, pump)
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)

    def _loop(self, client: ControlClient, pump: RadioPump) -> int:
        while not self.stop.is_set():
            self.notifier.watchdog()
            for ev in client.poll(POLL_S):
                self._control(client, pump, ev)
            for ev in pump.events():
                if isinstance(ev, Failed):
                    return 1
                self._radio(pump, ev)
            if client.state == "registered":
                self._timers(client, pump)
        return 0

    # --- control plane --------------------------------------------------------------------------------
    def _control(self, client: ControlClient, pump: RadioPump, ev: Event) -> None:
        if ev.kind in ("registered", "gone"):
            event(log, f"bs_{ev.kind}", round=ev.round)
            self._drop_round(pump)  # a new registration takes part from the next ROUND_START only
            if ev.kind == "registered":
                self._measure_capability()  # first information, unasked, at start-up
            return
        if ev.message is None:
            return
        body, rnd = ev.message.body, self._round
        if isinstance(body, CapabilityEnquiry):
            self._measure_capability()
        elif isinstance(body, Assign):
            if body.uplink_slot.node_id != self.node_id:
                log.error("ASSIGN grants a slot to node %d; this UE is node %d (check [bs.ues] and [ue].node_id)",
                          body.uplink_slot.node_id, self.node_id)  # fmt: skip
                return
            self._assign = body
            freq = self.first_info.apply(body) if self.first_info is not None else None
            event(log, "assigned", round=ev.message.round, mode=body.mode, group=body.group, mcs=body.mcs,
                  cpu_freq_hz=freq, tx_power_dbm=body.tx_power_dbm)  # fmt: skip
        elif isinstance(body, RoundStart):
            number = ev.message.round
            download = self._early.pop(number & 0xFFFFFFFF, None) or self._download(number & 0xFFFFFFFF, pump.cursor)
            self._early.clear()
            self._drop_round(pump)
            self._round = _Round(number, body.model_digest, download)
            event(log, "round_started", round=number, model_bytes=body.model_size_bytes, deadline_s=body.deadline_s)
        elif isinstance(body, Nack) and rnd is not None and rnd.upload is not None and ev.message.round == rnd.number:
            rnd.upload.add_nack("bs", body.nack, time.monotonic())
        elif isinstance(body, RoundEnd) and rnd is not None and ev.message.round == rnd.number:
            event(log, "round_ended", round=rnd.number, status=body.status, uploaded=rnd.reported)
            self.rounds_done += 1
            self._drop_round(pump)

    # --- radio ------------------------------------------------------------------------------------------
    def _radio(self, pump: RadioPump, ev: Received | OnAir) -> None:
        rnd = self._round
        if isinstance(ev, OnAir):
            if rnd is not None and rnd.upload is not None:
                rnd.upload.on_air(ev.job_id, ev.end_sample, time.monotonic())
            return
        if ev.frame.stream_id == BS_NODE_ID & 0xFF:
            self.tracker.add(BS_NODE_ID, self.node_id, ev.frame)
        if ev.frame.payload is None:
            return
        try:
            head, chunk = parse(ev.frame.payload)
        except LinkError:
            return
        if head.src != BS_NODE_ID:
            return
        if rnd is not None and head.object_id == rnd.download.object_id:
            rnd.download.offer(head, chunk, ev.start_sample)
            return
        inbound = self._early.get(head.object_id)
        if inbound is None:
            while len(self._early) >= EARLY_OBJECTS:
                self._early.pop(next(iter(self._early)))
            inbound = self._early[head.object_id] = self._download(head.object_id, ev.start_sample)
        inbound.offer(head, chunk, ev.start_sample)

    def _download(self, object_id: int, since_sample: int) -> Inbound:
        """The receiving end of the BS's broadcast ``object_id``; it NACKs blind (the UE expects the model)."""
        timing = repair_timing(self.cfg.air)
        return Inbound(self.node_id, src=BS_NODE_ID, object_id=object_id, timing=timing, since_sample=since_sample,
                       nack_blind=True)  # fmt: skip

    # --- timers -----------------------------------------------------------------------------------------
    def _timers(self, client: ControlClient, pump: RadioPump) -> None:
        self._send_capability(client)
        rnd = self._round
        if rnd is None or client.round != rnd.number:
            return
        nack = rnd.download.ack_due() or rnd.download.nack_due(pump.cursor)
        if nack is not None:
            client.send(Nack(nack))
        if rnd.download.complete and rnd.job is None:
            report = self.tracker.report(BS_NODE_ID, self.node_id)
            if report is not None:
                client.send(ChannelReport(control_bounds(report)))
            self._start_training(rnd)
        if rnd.job is not None and rnd.upload is None and rnd.job.done():
            self._finish_training(rnd, rnd.job.result())
        assign = self._assign
        if rnd.upload is None or assign is None:
            return
        job = rnd.upload.next_job(self._next_job_id(), assign.mcs, pump.cursor, time.monotonic(), assign.uplink_slot)
        if job is not None:
            pump.submit(job)
        if rnd.upload.delivered and not rnd.reported:
            rnd.reported = True
            up = rnd.upload
            energy = self._account(rnd)
            used_j = energy.get("compute_energy_j", 0.0) + energy.get("radio_energy_j", 0.0)
            client.send(UplinkDone(up.object_id, up.frames_sent, up.payload_bytes, rnd.compute_time_s, used_j))
            event(log, "uplink_done", round=rnd.number, payload_bytes=up.payload_bytes, passes=up.passes, **energy)

    def _start_training(self, rnd: _Round) -> None:
        """The model is verified (its own SHA-256); check it is the one ROUND_START announced, then hand the
        training step to the worker."""
        model = rnd.download.deliver()
        if hashlib.sha256(model).digest() != rnd.digest:
            log.error("round %d: the broadcast model does not match ROUND_START's SHA-256; skipping", rnd.number)
            self._round = None
            return
        if self._assign is None:
            log.error("round %d: no ASSIGN received, so no mode; skipping the round", rnd.number)
            self._round = None
            return
        rnd.assign = self._assign
        rnd.job = self._worker.submit(self._train, rnd.number, model, rnd.assign)
        event(log, "model_received", round=rnd.number, model_bytes=len(model), mode=rnd.assign.mode)

    def _train(self, number: int, model: bytes, assign: Assign) -> _Trained | None:
        """Worker thread: the training step, timed by ``measurement_clock()``; None if it failed (logged: the
        round is skipped, the loop goes on)."""
        clock = measurement_clock()
        start = clock()
        try:
            data = self.training.upload_bytes(number, model, assign)
        except LearningError as exc:
            log.error("round %d: the model cannot be used (%s); skipping the round", number, exc)
            return None
        except Exception:
            log.exception("round %d: the training step failed; skipping the round", number)
            return None
        return _Trained(number, data, clock() - start, self.training.last_work)

    def _finish_training(self, rnd: _Round, trained: _Trained | None) -> None:
        """Loop: the worker finished this round's step; queue the upload (or skip the round if it failed)."""
        if trained is None or trained.round != rnd.number:
            self._round = None
            return
        rnd.compute_time_s, rnd.work = trained.compute_time_s, trained.work
        rnd.upload = Outbound(trained.data, src=self.node_id, dsts=[BS_NODE_ID], object_id=rnd.download.object_id,
                              frame_payload_bytes=self.cfg.air.frame_payload_bytes, timing=repair_timing(self.cfg.air),
                              expect={"bs"})  # fmt: skip
        event(log, "trained", round=rnd.number, upload_bytes=len(trained.data), compute_time_s=trained.compute_time_s)

    def _measure_capability(self) -> None:
        """Queue a capability measurement in the worker (nothing without [training]: there is no model to
        time); one already queued, running or finished but not yet sent answers this request too (a finished
        one that failed does not)."""
        if self.first_info is None:
            return
        job = self._capability
        if job is not None and not (job.done() and job.result() is None):
            log.debug("capability measurement already under way; not queued again")
            return
        self._capability = self._worker.submit(self._capability_report, self.first_info)

    @staticmethod
    def _capability_report(first_info: UeFirstInfo) -> CapabilityReport | None:
        """Worker thread: measure and build CAPABILITY_REPORT; None if that failed (logged)."""
        try:
            return first_info.capability()
        except PolicyError as exc:
            log.error("capability not measured: %s", exc)
        except Exception:
            log.exception("capability measurement failed; no CAPABILITY_REPORT sent")
        return None

    def _send_capability(self, client: ControlClient) -> None:
        """Loop (registered): send the finished measurement's CAPABILITY_REPORT."""
        job = self._capability
        if job is None or not job.done():
            return
        self._capability = None
        report = job.result()
        if report is None:
            return
        client.send(report)
        event(log, "capability_sent", cycles_per_sample=report.cycles_per_sample,
              cpu_freq_max_hz=report.cpu_freq_max_hz, num_local_samples=report.num_local_samples)  # fmt: skip

    def _account(self, rnd: _Round) -> dict[str, float | bool]:
        """Energy of the round (compute at the applied clock, uplink airtime at ASSIGN's power), against the
        budget; airtime = frames sent x a full frame's burst at the round's MCS (an upper bound)."""
        if self.first_info is None or rnd.assign is None or rnd.upload is None:
            return {}
        air = self.cfg.air
        burst = burst_num_samples(air.phy, air.frame_payload_bytes, rnd.assign.mcs)
        airtime_s = rnd.upload.frames_sent * burst / air.sample_rate_hz
        samples, fraction = rnd.work
        return self.first_info.account(samples, fraction, airtime_s, rnd.assign)

    def _drop_round(self, pump: RadioPump) -> None:
        """Forget the current round; uplink frames not yet on the air are cancelled, and so is its training
        step if it has not started; one that is running finishes in the worker and its result is discarded."""
        rnd, self._round = self._round, None
        if rnd is None:
            return
        if rnd.upload is not None:
            for job_id in rnd.upload.job_ids:
                pump.cancel(job_id)
        if rnd.job is not None and rnd.upload is None:
            rnd.job.cancel()  # False if it is running: it finishes, nobody picks it up
            number = rnd.number
            rnd.job.add_done_callback(
                lambda job: event(log, "training_discarded", round=number, ran=not job.cancelled())
            )

    def _next_job_id(self) -> int:
        self._job_id += 1
        return self._job_id
