"""Selective-repeat ARQ in one process: the driver of the link endpoints (testbed/link/endpoints.py) over a
``FrameLink``, for broadcast (one sender, N receivers) and TDMA uplink (N senders, one receiver).

The daemons run the same endpoints with the same rules; only the carriers differ. Here the frames go through
the ``FrameLink`` window by window on one sample clock (the medium's), the NACKs and acknowledgements are
handed to the sender in-process (after ``control_latency_s`` of virtual time), seconds are samples over the
sample rate, and frames are placed on the clock by the same ``BurstPlanner`` as the radio pump's: one sender
back to back, several senders each in its equal slot of a TDMA cycle. The transfer ends when every object is
acknowledged by all its addressees or its sender gave up after ``max_passes``: verified objects are
delivered, the rest raise ``TransferIncomplete`` naming what is missing, and their partial data is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from testbed.errors import LinkError
from testbed.link.endpoints import Inbound, Outbound, RepairTiming, Verdict
from testbed.link.framelink import FrameLink, TxFrame, Window
from testbed.link.mcs import McsPolicy
from testbed.link.messages import ChannelReport, Nack, SlotGrant
from testbed.link.placement import BurstPlanner
from testbed.link.segment import parse
from testbed.link.tdma import make_schedule
from testbed.link.tracker import ChannelTracker


@dataclass(frozen=True)
class LinkConfig:
    """Link-layer settings of an in-process transfer (names and units as the daemons' ``[air]``).

    frame_payload_bytes : PHY payload per frame, segment header included (large frames amortise the
        preamble and PHY header; at most PhyConfig.max_payload_bytes).
    max_passes : passes of one object, the first included, before its sender gives up.
    guard_samples : silence between bursts and around TDMA slots (one OFDM symbol by default).
    window_samples : the FrameLink window: the clock advances by this much when nothing is on air (a
        window with bursts ends with its last burst). Bounds memory: a window is demodulated whole.
    tdma_cycle_samples : TDMA cycle with several senders (equal slots, guards around them); None: the
        shortest cycle whose slots hold one full frame at the slowest MCS the policy may use. One sender
        has no cycle: it sends back to back.
    nack_quiet_samples : a receiver NACKs after the cycle plus this much silence from the sender.
    nack_gather_s : a sender waits this long after the first NACK for the other receivers' ones.
    control_latency_s : virtual time a NACK or acknowledgement takes from receiver to sender.
    mcs : the MCS policy (adaptive with margin, or fixed).
    """

    frame_payload_bytes: int = 8192
    max_passes: int = 8
    guard_samples: int = 80
    window_samples: int = 50_000
    tdma_cycle_samples: int | None = None
    nack_quiet_samples: int = 40_000
    nack_gather_s: float = 0.1
    control_latency_s: float = 0.0
    mcs: McsPolicy = field(default_factory=McsPolicy)

    def __post_init__(self) -> None:
        if (
            self.max_passes < 1 or self.guard_samples < 0 or self.window_samples < 1 or self.nack_quiet_samples < 1
            or self.nack_gather_s < 0 or self.control_latency_s < 0
            or (self.tdma_cycle_samples is not None and self.tdma_cycle_samples < 1)
        ):  # fmt: skip
            raise LinkError(
                "LinkConfig needs max_passes >= 1, guard_samples >= 0, window_samples >= 1, nack_quiet_samples "
                ">= 1, nack_gather_s >= 0, control_latency_s >= 0 and tdma_cycle_samples None or >= 1; got "
                f"{self.max_passes}, {self.guard_samples}, {self.window_samples}, {self.nack_quiet_samples}, "
                f"{self.nack_gather_s}, {self.control_latency_s}, {self.tdma_cycle_samples}"
            )


@dataclass(frozen=True)
class Session:
    """One object ``data`` (id ``object_id``) from node ``src`` to the nodes ``dsts``."""

    src: int
    dsts: tuple[int, ...]
    object_id: int
    data: bytes


@dataclass(frozen=True)
class Delivery:
    """Outcome of one object at one receiver: ``data`` if verified, else ``error`` says what was missing."""

    src: int
    dst: int
    object_id: int
    object_bytes: int
    data: bytes | None
    error: str | None


@dataclass
class TransferReport:
    """Airtime and reliability accounting of one transfer.

    burst_samples : samples of bursts put on air. window_samples : the sample clock from the start to the
    last acknowledgement (bursts, guards, TDMA waits and the quiet time before each NACK): the airtime.
    frames_sent : transmissions, first copies and resends. frames_lost : transmissions an addressee did not
    decode (summed over addressees). repair_rounds : passes after the first, most of any sender.
    nacks_sent / acks_sent : control messages the receivers sent. goodput counts an object once, when all
    its addressees verified it.
    """

    sample_rate_hz: float
    frame_count: dict[int, int] = field(default_factory=dict)  # per sender
    frames_sent: int = 0
    frames_resent: int = 0
    frames_lost: int = 0
    repair_rounds: int = 0
    nacks_sent: int = 0
    acks_sent: int = 0
    windows: int = 0
    burst_samples: int = 0
    window_samples: int = 0
    mcs_frames: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    channel: list[ChannelReport] = field(default_factory=list)

    @property
    def airtime_s(self) -> float:
        return self.window_samples / self.sample_rate_hz

    @property
    def complete(self) -> bool:
        return all(d.data is not None for d in self.deliveries)

    @property
    def goodput_bps(self) -> float:
        """Bits of objects verified by all their addressees, per second of airtime."""
        done: dict[tuple[int, int], bool] = {}
        size: dict[tuple[int, int], int] = {}
        for d in self.deliveries:
            key = (d.src, d.object_id)
            done[key] = done.get(key, True) and d.data is not None
            size[key] = d.object_bytes
        bits = 8 * sum(size[k] for k, ok in done.items() if ok)
        return bits / self.airtime_s if self.window_samples else 0.0

    def summary(self) -> dict:
        """Plain-data view for JSON output (no payloads)."""
        return {
            "frames_sent": self.frames_sent,
            "frames_resent": self.frames_resent,
            "frames_lost": self.frames_lost,
            "frame_count": self.frame_count,
            "repair_rounds": self.repair_rounds,
            "nacks_sent": self.nacks_sent,
            "acks_sent": self.acks_sent,
            "windows": self.windows,
            "burst_samples": self.burst_samples,
            "window_samples": self.window_samples,
            "airtime_s": self.airtime_s,
            "goodput_bps": self.goodput_bps,
            "mcs_frames": self.mcs_frames,
            "verdicts": self.verdicts,
            "deliveries": [
                {
                    "src": d.src,
                    "dst": d.dst,
                    "object_id": d.object_id,
                    "object_bytes": d.object_bytes,
                    "ok": d.data is not None,
                    "error": d.error,
                }
                for d in self.deliveries
            ],  # fmt: skip
            "channel": [
                {
                    "tx_node": c.tx_node,
                    "rx_node": c.rx_node,
                    "snr_db": c.snr_db,
                    "cfo_hz": c.cfo_hz,
                    "mean_gain_db": c.mean_gain_db,
                    "frame_success": c.frame_success,
                }
                for c in self.channel
            ],  # fmt: skip
        }


class TransferIncomplete(LinkError):
    """Some object could not be completed; ``report`` holds the deliveries that did succeed."""

    def __init__(self, message: str, report: TransferReport) -> None:
        super().__init__(message)
        self.report = report


def broadcast(
    link: FrameLink, data: bytes, *, src: int, receivers: Sequence[int], object_id: int, cfg: LinkConfig,
    tracker: ChannelTracker | None = None, progress: Callable[[int], None] | None = None,
) -> TransferReport:  # fmt: skip
    """Send ``data`` from ``src`` to every node in ``receivers`` at once (one receiver: unicast)."""
    return run_transfer(link, [Session(src, tuple(receivers), object_id, data)], cfg, tracker, progress)


def uplink(
    link: FrameLink, objects: Mapping[int, bytes], *, dst: int, object_ids: Mapping[int, int], cfg: LinkConfig,
    tracker: ChannelTracker | None = None, progress: Callable[[int], None] | None = None,
) -> TransferReport:  # fmt: skip
    """Send ``objects[ue]`` (id ``object_ids[ue]``) from each UE to ``dst``, the UEs in TDMA slots."""
    sessions = [Session(ue, (dst,), object_ids[ue], data) for ue, data in objects.items()]
    return run_transfer(link, sessions, cfg, tracker, progress)


def _check_sessions(sessions: Sequence[Session]) -> None:
    srcs = [s.src for s in sessions]
    if not sessions or len(set(srcs)) != len(srcs) or len({s & 0xFF for s in srcs}) != len(srcs):
        raise LinkError(f"a transfer needs one session per sender, senders distinct modulo 256; got senders {srcs}")
    for s in sessions:
        if not s.dsts or s.src in s.dsts or len(set(s.dsts)) != len(s.dsts):
            raise LinkError(f"session from node {s.src} needs distinct receivers other than itself, got {s.dsts}")


def tdma_slots(link: FrameLink, senders: Sequence[int], cfg: LinkConfig) -> tuple[int, dict[int, SlotGrant | None]]:
    """(cycle samples, slot per sender): one sender has the air to itself (no cycle, no slot); several get
    equal slots of ``cfg.tdma_cycle_samples`` in order, each holding at least one full frame at the slowest
    MCS the policy may pick. LinkError naming the numbers if they do not fit."""
    if len(senders) == 1:
        return 0, {senders[0]: None}
    policy, guard, n = cfg.mcs, cfg.guard_samples, len(senders)
    candidates = [policy.fixed_mcs] if policy.fixed_mcs is not None else [policy.fallback_mcs, *policy.thresholds_db]
    longest = max(link.burst_num_samples(cfg.frame_payload_bytes, m) for m in candidates)
    cycle = cfg.tdma_cycle_samples or n * (longest + guard) + guard
    slot = (cycle - guard * (n + 1)) // n
    if slot < longest:
        raise LinkError(
            f"{n} senders leave {slot}-sample slots in a {cycle}-sample TDMA cycle, less than one {longest}-sample "
            "frame; raise tdma_cycle_samples or lower frame_payload_bytes"
        )
    schedule = make_schedule([(s, slot) for s in senders], guard)
    return cycle, {s: schedule.grant_for(s) for s in senders}


def run_transfer(
    link: FrameLink, sessions: Sequence[Session], cfg: LinkConfig, tracker: ChannelTracker | None = None,
    progress: Callable[[int], None] | None = None,
) -> TransferReport:  # fmt: skip
    """Run selective-repeat ARQ for ``sessions`` (distinct senders) until every object is acknowledged or its
    sender gave up. Returns the report when every object reached every addressee intact; raises
    TransferIncomplete otherwise."""
    _check_sessions(sessions)
    if cfg.frame_payload_bytes > link.phy.max_payload_bytes:
        raise LinkError(
            f"frame_payload_bytes={cfg.frame_payload_bytes} exceeds the PHY's max_payload_bytes="
            f"{link.phy.max_payload_bytes}; lower it in LinkConfig"
        )
    transfer = _Transfer(link, sessions, cfg, tracker if tracker is not None else ChannelTracker(), progress)
    transfer.run()
    return _finish(sessions, transfer.inbound, transfer.tracker, transfer.report)


def _name(node: int) -> str:
    """How a receiver is named to its sender's ``Outbound`` (the daemons use control-plane names)."""
    return f"node {node}"


class _Transfer:
    """The state of one in-process transfer: the endpoints, a planner per sender, NACKs in flight."""

    def __init__(
        self, link: FrameLink, sessions: Sequence[Session], cfg: LinkConfig, tracker: ChannelTracker,
        progress: Callable[[int], None] | None,
    ) -> None:  # fmt: skip
        self.link, self.cfg, self.tracker, self.progress = link, cfg, tracker, progress
        self.rate_hz = link.phy.sample_rate_hz
        cycle, self.slots = tdma_slots(link, [s.src for s in sessions], cfg)
        timing = RepairTiming(cycle + cfg.nack_quiet_samples, self.rate_hz, cfg.max_passes, cfg.nack_gather_s)
        self.outbound = {s.src: Outbound(s.data, src=s.src, dsts=s.dsts, object_id=s.object_id, timing=timing,
                                         frame_payload_bytes=cfg.frame_payload_bytes,
                                         expect={_name(d) for d in s.dsts}) for s in sessions}  # fmt: skip
        self.inbound = {(d, s.src): Inbound(d, src=s.src, object_id=s.object_id, timing=timing, nack_blind=True)
                        for s in sessions for d in s.dsts}  # fmt: skip
        self.planners = {s.src: BurstPlanner(cfg.guard_samples, cycle, link.burst_num_samples) for s in sessions}
        self.receivers = sorted({d for s in sessions for d in s.dsts})
        self.by_stream = {s.src & 0xFF: s.src for s in sessions}
        self.report = TransferReport(sample_rate_hz=self.rate_hz)
        self.report.frame_count = {src: out.count for src, out in self.outbound.items()}
        self.mail: list[tuple[float, int, str, Nack]] = []  # (arrival s, sender, receiver, NACK) in flight
        self.now = 0  # the sample clock: start of the next window
        self._job_id = 0

    def run(self) -> None:
        while True:
            self._timers()
            if all(out.done for out in self.outbound.values()):
                break
            self._window()
        report = self.report
        report.window_samples = self.now
        report.repair_rounds = max(out.passes for out in self.outbound.values()) - 1

    def _timers(self) -> None:
        """Receivers NACK or acknowledge, the control plane delivers what has arrived, idle senders take
        their next frames (a link never measured first sends one probe frame at the fallback MCS)."""
        now, now_s, cfg = self.now, self.now / self.rate_hz, self.cfg
        for (dst, src), inbound in self.inbound.items():
            ack = inbound.ack_due()
            nack = ack or inbound.nack_due(now)
            if nack is not None:
                self.report.acks_sent += ack is not None
                self.report.nacks_sent += ack is None
                self.mail.append((now_s + cfg.control_latency_s, src, _name(dst), nack))
        arrived = [m for m in self.mail if m[0] <= now_s]
        self.mail = [m for m in self.mail if m[0] > now_s]
        for _, src, who, nack in arrived:
            self.outbound[src].add_nack(who, nack, now_s)
        for src, out in self.outbound.items():
            if not self.planners[src].idle:
                continue
            snrs = [self.tracker.snr_db(src, d) for d in out.dsts]
            measured = None not in snrs
            mcs = cfg.mcs.choose(min(s for s in snrs if s is not None) if measured else None)
            probe = not measured and cfg.mcs.fixed_mcs is None
            self._job_id += 1
            job = out.next_job(self._job_id, mcs, now, now_s, self.slots[src], 1 if probe else None)
            if job is not None:
                self.planners[src].plan(job, now + cfg.guard_samples)
                self.report.mcs_frames[mcs] = self.report.mcs_frames.get(mcs, 0) + len(job.frames)

    def _window(self) -> None:
        """Put every burst due in the next window on the medium, feed what was heard to the receivers and
        tell the senders which jobs are on air. A window with bursts ends with its last burst."""
        horizon, bursts = self.now + self.cfg.window_samples, []
        while due := [(src, b) for src, p in self.planners.items() for b in p.due(horizon)]:
            bursts += due  # a burst crossing the horizon extends the window: take what starts before its end
            horizon = max(b.end for _, b in bursts)
        end = max((b.end for _, b in bursts), default=self.now + self.cfg.window_samples)
        frames = [TxFrame(src, b.start - self.now, b.payload, b.mcs, stream_id=src & 0xFF, seq=b.seq & 0xFFFF)
                  for src, b in bursts]  # fmt: skip
        window = self.link.exchange(frames, self.receivers, end - self.now)
        rep = self.report
        rep.windows += 1
        for src, b in bursts:
            rep.burst_samples += b.length
            rep.frames_sent += 1
            rep.frames_lost += len(self.outbound[src].dsts)  # decoded copies are subtracted in _ingest
        self.now = end
        self._ingest(window)
        for src, planner in self.planners.items():
            for job_id, job_end in planner.finished(self.now):
                self.outbound[src].on_air(job_id, job_end, self.now / self.rate_hz)
        if self.progress is not None and bursts:
            self.progress(len(bursts))

    def _ingest(self, window: Window) -> None:
        """Feed every decoded frame to its receiver (heard at the window's end, when it was demodulated);
        measure the channel on every detected frame."""
        rep = self.report
        for rx, heard in window.heard.items():
            for h in heard:
                tx_node = self.by_stream.get(h.stream_id)
                if tx_node is not None:
                    self.tracker.add(tx_node, rx, h)
                if h.payload is None:
                    continue
                try:
                    head, chunk = parse(h.payload)
                except LinkError:
                    rep.verdicts["malformed"] = rep.verdicts.get("malformed", 0) + 1
                    continue
                inbound = self.inbound.get((rx, head.src))
                verdict = inbound.offer(head, chunk, self.now) if inbound is not None else Verdict.FOREIGN
                rep.verdicts[verdict.value] = rep.verdicts.get(verdict.value, 0) + 1
                if verdict in (Verdict.NEW, Verdict.DUPLICATE):
                    rep.frames_lost -= 1


def _finish(
    sessions: Sequence[Session], inbound: Mapping[tuple[int, int], Inbound], tracker: ChannelTracker,
    report: TransferReport,
) -> TransferReport:  # fmt: skip
    report.frames_resent = report.frames_sent - sum(report.frame_count.values())
    errors = []
    for s in sessions:
        for d in s.dsts:
            try:
                data, error = inbound[d, s.src].deliver(), None
            except LinkError as exc:
                data, error = None, str(exc)
                errors.append(error)
            report.deliveries.append(Delivery(s.src, d, s.object_id, len(s.data), data, error))
            chan = tracker.report(s.src, d)
            if chan is not None:
                report.channel.append(chan)
    if errors:
        raise TransferIncomplete(
            f"transfer incomplete after {report.repair_rounds} repair rounds: " + "; ".join(errors), report
        )
    return report
