"""Selective-repeat ARQ for broadcast (one sender, N receivers) and TDMA uplink (N senders, one receiver).

Both are the same engine: each window, every sender with frames pending gets one TDMA slot (a broadcast is
the one-slot case), sends up to ``frames_per_window`` frames in it, and every receiver keeps what passes its
checks. After a pass over everything pending, each receiver that is not complete reports a bitmap NACK; a
sender's next pass resends the union of what its receivers miss. After ``max_repair_rounds`` repair passes
the transfer ends: complete objects are delivered, the rest raise ``TransferIncomplete`` naming what is
missing, and their partial data is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from testbed.errors import LinkError
from testbed.link.airtime import McsPolicy
from testbed.link.framelink import FrameLink, TxFrame, Window
from testbed.link.messages import ChannelReport
from testbed.link.repeat import ObjectSender, Reassembler, Verdict
from testbed.link.segment import parse
from testbed.link.tdma import make_schedule, place_in_slot, slot_need
from testbed.link.tracker import ChannelTracker


@dataclass(frozen=True)
class LinkConfig:
    """Link-layer settings.

    frame_payload_bytes : PHY payload per frame, segment header included (large frames amortise the
        preamble and PHY header; at most PhyConfig.max_payload_bytes).
    max_repair_rounds : passes of retransmission after the first pass before the transfer fails.
    guard_samples : silence before, between and after bursts (one OFDM symbol by default).
    frames_per_window : frames a sender puts in one window (bounds memory: a window is demodulated whole).
    mcs : the MCS policy (adaptive with margin, or fixed).
    """

    frame_payload_bytes: int = 8192
    max_repair_rounds: int = 8
    guard_samples: int = 80
    frames_per_window: int = 32
    mcs: McsPolicy = field(default_factory=McsPolicy)

    def __post_init__(self) -> None:
        if self.max_repair_rounds < 0 or self.guard_samples < 0 or self.frames_per_window < 1:
            raise LinkError(
                f"LinkConfig needs max_repair_rounds >= 0, guard_samples >= 0, frames_per_window >= 1; got "
                f"{self.max_repair_rounds}, {self.guard_samples}, {self.frames_per_window}"
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

    burst_samples : samples of bursts put on air. window_samples : length of all windows (bursts, guards).
    frames_sent : transmissions, first copies and resends. frames_lost : transmissions an addressee did not
    decode (summed over addressees). goodput counts an object once, when all its addressees verified it.
    """

    sample_rate_hz: float
    frame_count: dict[int, int] = field(default_factory=dict)  # per sender
    frames_sent: int = 0
    frames_resent: int = 0
    frames_lost: int = 0
    repair_rounds: int = 0
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


def run_transfer(
    link: FrameLink, sessions: Sequence[Session], cfg: LinkConfig, tracker: ChannelTracker | None = None,
    progress: Callable[[int], None] | None = None,
) -> TransferReport:  # fmt: skip
    """Run selective-repeat ARQ for ``sessions`` (distinct senders) until complete or out of repair rounds.

    Returns the report when every object reached every addressee intact; raises TransferIncomplete otherwise.
    """
    _check_sessions(sessions)
    if cfg.frame_payload_bytes > link.phy.max_payload_bytes:
        raise LinkError(
            f"frame_payload_bytes={cfg.frame_payload_bytes} exceeds the PHY's max_payload_bytes="
            f"{link.phy.max_payload_bytes}; lower it in LinkConfig"
        )
    tracker = tracker if tracker is not None else ChannelTracker()
    report = TransferReport(sample_rate_hz=link.phy.sample_rate_hz)
    senders = [ObjectSender(s.data, src=s.src, dsts=s.dsts, object_id=s.object_id,
                            frame_payload_bytes=cfg.frame_payload_bytes) for s in sessions]  # fmt: skip
    report.frame_count = {tx.src: tx.count for tx in senders}
    reasm = {(d, s.src): Reassembler(d, src=s.src, object_id=s.object_id) for s in sessions for d in s.dsts}
    active = senders
    for round_no in range(cfg.max_repair_rounds + 1):
        report.repair_rounds = round_no
        while live := [tx for tx in active if not tx.pass_done]:
            window, sent = _send_window(link, live, cfg, tracker, report)
            _ingest(window, sessions, reasm, tracker, report)
            if progress is not None:
                progress(sent)
        # each incomplete receiver reports a bitmap NACK (over the control plane between processes)
        active = [tx for tx in senders if tx.next_pass([reasm[d, tx.src].nack() for d in tx.dsts
                                                        if not reasm[d, tx.src].complete])]  # fmt: skip
        if not active:
            break
    return _finish(sessions, reasm, tracker, report)


def _send_window(
    link: FrameLink, live: list[ObjectSender], cfg: LinkConfig, tracker: ChannelTracker, report: TransferReport
) -> tuple[Window, int]:
    """Schedule one TDMA window (a slot per live sender), put each sender's next pending frames in its slot,
    and exchange it. A sender with an unmeasured link sends one frame at the fallback MCS (a probe).
    Returns the window and the number of frames sent."""
    plan, demands = {}, []
    for tx in live:
        snrs = [tracker.snr_db(tx.src, d) for d in tx.dsts]
        measured = None not in snrs
        mcs = cfg.mcs.choose(min(snrs) if measured else None)
        batch = tx.take(cfg.frames_per_window if measured or cfg.mcs.fixed_mcs is not None else 1)
        lengths = [link.burst_num_samples(len(tx.frames[i]), mcs) for i in batch]
        plan[tx.src] = (mcs, batch, lengths)
        demands.append((tx.src, slot_need(lengths, cfg.guard_samples)))
    schedule = make_schedule(demands, cfg.guard_samples)  # control information: the BS sends it to the nodes
    frames = []
    for tx in live:
        mcs, batch, lengths = plan[tx.src]
        starts = place_in_slot(schedule.grant_for(tx.src), lengths, cfg.guard_samples)
        for i, start in zip(batch, starts, strict=True):
            frames.append(TxFrame(tx.src, start, tx.frames[i], mcs, stream_id=tx.src & 0xFF, seq=int(i) & 0xFFFF))
        report.mcs_frames[mcs] = report.mcs_frames.get(mcs, 0) + len(lengths)
        report.burst_samples += sum(lengths)
        report.frames_sent += len(lengths)
        report.frames_lost += len(lengths) * len(tx.dsts)  # decoded copies are subtracted in _ingest
    receivers = sorted({d for tx in live for d in tx.dsts})
    window = link.exchange(frames, receivers, schedule.window_samples)
    report.window_samples += window.window_samples
    report.windows += 1
    return window, len(frames)


def _ingest(
    window: Window, sessions: Sequence[Session], reasm: dict[tuple[int, int], Reassembler], tracker: ChannelTracker,
    report: TransferReport,
) -> None:  # fmt: skip
    """Feed every decoded frame to the right reassembler; measure the channel on every detected frame."""
    by_stream = {s.src & 0xFF: s.src for s in sessions}
    for rx, heard in window.heard.items():
        for h in heard:
            tx_node = by_stream.get(h.stream_id)
            if tx_node is not None:
                tracker.add(tx_node, rx, h)
            if h.payload is None:
                continue
            try:
                head, chunk = parse(h.payload)
            except LinkError:
                report.verdicts["malformed"] = report.verdicts.get("malformed", 0) + 1
                continue
            r = reasm.get((rx, head.src))
            verdict = r.offer(head, chunk) if r is not None else Verdict.FOREIGN
            report.verdicts[verdict.value] = report.verdicts.get(verdict.value, 0) + 1
            if verdict in (Verdict.NEW, Verdict.DUPLICATE):
                report.frames_lost -= 1


def _finish(
    sessions: Sequence[Session], reasm: dict[tuple[int, int], Reassembler], tracker: ChannelTracker,
    report: TransferReport,
) -> TransferReport:  # fmt: skip
    report.frames_resent = report.frames_sent - sum(report.frame_count.values())
    errors = []
    for s in sessions:
        for d in s.dsts:
            try:
                data, error = reasm[d, s.src].deliver(), None
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
