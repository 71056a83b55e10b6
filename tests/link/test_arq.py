from dataclasses import replace

import pytest

from testbed.errors import LinkError
from testbed.link.arq import LinkConfig, TransferIncomplete, broadcast, tdma_slots, uplink
from testbed.link.framelink import ModelFrameLink
from testbed.link.mcs import McsPolicy
from testbed.link.segment import frame_count
from testbed.phy.numerology import PhyConfig

PHY = PhyConfig()
CFG = LinkConfig(frame_payload_bytes=600, window_samples=20_000)


def test_broadcast_with_loss_is_bit_exact_and_accounted(rng):
    data = rng.bytes(20_000)
    link = ModelFrameLink(PHY, rng, loss=0.2, snr_db=25.0)
    rep = broadcast(link, data, src=0, receivers=[1, 2, 3], object_id=11, cfg=CFG)
    assert [d.data == data for d in rep.deliveries] == [True, True, True]
    n = frame_count(len(data), 600 - 26)
    assert rep.frame_count == {0: n}
    assert rep.frames_resent == rep.frames_sent - n > 0
    assert rep.repair_rounds >= 1
    assert rep.burst_samples == link.air_log.samples_on_air
    assert rep.window_samples == link.air_log.clock_samples
    assert rep.airtime_s == pytest.approx(rep.window_samples / PHY.sample_rate_hz)
    assert rep.goodput_bps == pytest.approx(8 * len(data) / rep.airtime_s)
    # every loss was counted: each transmission reaches 3 addressees, decoded copies are new or duplicate
    assert rep.frames_lost == 3 * rep.frames_sent - rep.verdicts["new"] - rep.verdicts.get("duplicate", 0)
    assert {c.rx_node for c in rep.channel} == {1, 2, 3}
    # first frame probes at the fallback MCS, then the measured 25 dB allows 64QAM 3/4 (18.2 + 3 dB margin)
    assert rep.mcs_frames["bpsk-1/2"] == 1 and rep.mcs_frames["64qam-3/4"] == rep.frames_sent - 1


def test_repair_resends_only_the_union_of_what_receivers_miss(rng):
    data = rng.bytes(30_000)
    loss = {(0, 1): 0.3, (0, 2): 0.0}
    link = ModelFrameLink(PHY, rng, loss=loss)
    rep = broadcast(link, data, src=0, receivers=[1, 2], object_id=1, cfg=CFG)
    # node 2 never loses: each frame node 1 lost is resent exactly once per loss, nothing else is resent
    assert rep.complete and rep.frames_resent == rep.frames_lost > 0
    both = broadcast(ModelFrameLink(PHY, rng, loss=0.3), data, src=0, receivers=[1, 2], object_id=2, cfg=CFG)
    # two lossy receivers: a frame both lost is resent once for both, so resends < losses
    assert both.complete and 0 < both.frames_resent < both.frames_lost


def test_hopeless_transfer_fails_naming_what_is_missing_and_delivers_nothing(rng):
    data = rng.bytes(10_000)
    link = ModelFrameLink(PHY, rng, loss={(0, 1): 0.0, (0, 2): 0.9})
    cfg = LinkConfig(frame_payload_bytes=600, max_passes=3, mcs=McsPolicy(fixed_mcs="qpsk-1/2"))
    with pytest.raises(
        TransferIncomplete, match=r"after 2 repair rounds: node 2: object 4 from node 0 is missing"
    ) as e:
        broadcast(link, data, src=0, receivers=[1, 2], object_id=4, cfg=cfg)
    assert isinstance(e.value, LinkError)
    by_dst = {d.dst: d for d in e.value.report.deliveries}
    assert by_dst[1].data == data and by_dst[2].data is None and "frames" in by_dst[2].error


def test_uplink_tdma_four_ues_no_overlap_and_intact(rng):
    objects = {ue: rng.bytes(int(n)) for ue, n in zip((1, 2, 3, 4), (5000, 9000, 1, 12_000), strict=True)}
    link = ModelFrameLink(PHY, rng, loss=0.15)
    rep = uplink(link, objects, dst=0, object_ids={ue: 50 + ue for ue in objects}, cfg=CFG)
    assert {d.src: d.data for d in rep.deliveries} == objects
    assert link.air_log.overlaps() == []
    assert {src for src, _, _ in link.air_log.bursts} == {1, 2, 3, 4}
    assert rep.goodput_bps == pytest.approx(8 * sum(map(len, objects.values())) / rep.airtime_s)


def test_model_link_destroys_overlapping_bursts(rng):
    from testbed.link.framelink import TxFrame

    link = ModelFrameLink(PHY, rng)
    n = link.burst_num_samples(100, "qpsk-1/2")
    frames = [TxFrame(1, 0, bytes(100), "qpsk-1/2"), TxFrame(2, n - 1, bytes(100), "qpsk-1/2")]
    win = link.exchange(frames, [0], 2 * n)
    assert [h.payload for h in win.heard[0]] == [None, None]
    assert len(link.air_log.overlaps()) == 1
    with pytest.raises(LinkError, match="leaves the"):
        link.exchange(frames, [0], n)


def test_bad_sessions_are_refused(rng):
    link = ModelFrameLink(PHY, rng)
    with pytest.raises(LinkError, match="other than itself"):
        broadcast(link, b"x", src=1, receivers=[1], object_id=0, cfg=CFG)
    with pytest.raises(LinkError, match="distinct modulo 256"):
        uplink(link, {1: b"a", 257: b"b"}, dst=0, object_ids={1: 0, 257: 0}, cfg=CFG)
    with pytest.raises(LinkError, match="max_payload_bytes=8192"):
        broadcast(link, b"x", src=0, receivers=[1], object_id=0, cfg=LinkConfig(frame_payload_bytes=9000))
    with pytest.raises(LinkError, match="window_samples"):
        LinkConfig(window_samples=0)


class Dropping:
    """A frame link that loses the first copy of the frames whose PHY seq is in ``drop`` (at every receiver)."""

    def __init__(self, inner: ModelFrameLink, drop: set[int]) -> None:
        self.inner, self.drop, self.phy, self.air_log = inner, set(drop), inner.phy, inner.air_log

    def burst_num_samples(self, payload_bytes: int, mcs: str) -> int:
        return self.inner.burst_num_samples(payload_bytes, mcs)

    def exchange(self, frames, receivers, window_samples):
        win = self.inner.exchange(frames, receivers, window_samples)
        lost = {i for i, f in enumerate(frames) if f.seq in self.drop}
        self.drop -= {frames[i].seq for i in lost}
        heard = {rx: [replace(h, payload=None) if i in lost else h for i, h in enumerate(hs)]
                 for rx, hs in win.heard.items()}  # fmt: skip
        return replace(win, heard=heard)


@pytest.mark.parametrize(("latency_s", "repair_windows", "ack_windows"), [(0.0, 2, 0), (0.01, 3, 1)])
def test_repair_waits_for_the_quiet_time_and_the_nack_on_the_control_plane(rng, latency_s, repair_windows,
                                                                           ack_windows):  # fmt: skip
    """The receiver NACKs one quiet time (90,000 samples: two 50,000-sample windows) after the pass; the
    NACK and the acknowledgement reach the sender after the control latency (25,000 samples: the next
    window); only the lost frame is resent. The old engine resent at once, with no NACK wait or latency."""
    data = rng.bytes(20_000)
    cfg = LinkConfig(frame_payload_bytes=600, window_samples=50_000, nack_quiet_samples=90_000,
                     control_latency_s=latency_s, mcs=McsPolicy(fixed_mcs="qpsk-1/2"))  # fmt: skip
    link = Dropping(ModelFrameLink(PHY, rng), drop={3})
    rep = broadcast(link, data, src=0, receivers=[1], object_id=1, cfg=cfg)
    n = frame_count(len(data), 600 - 26)
    bursts = link.air_log.bursts
    assert len(bursts) == rep.frames_sent == n + 1 and rep.frames_resent == 1 and rep.repair_rounds == 1
    assert bursts[n][1] - bursts[n - 1][1] - bursts[n - 1][2] == repair_windows * 50_000 + cfg.guard_samples
    # the transfer ends when the acknowledgement of the repaired object arrives
    assert rep.window_samples == bursts[n][1] + bursts[n][2] + ack_windows * 50_000
    assert rep.nacks_sent == 1 and rep.acks_sent == 1 and rep.deliveries[0].data == data


def test_uplink_bursts_stay_in_each_senders_slot_of_the_cycle(rng):
    objects = {ue: rng.bytes(8000) for ue in (1, 2, 3)}
    link = ModelFrameLink(PHY, rng, loss=0.2)
    cfg = LinkConfig(frame_payload_bytes=600, tdma_cycle_samples=60_000, mcs=McsPolicy(fixed_mcs="qpsk-1/2"))
    rep = uplink(link, objects, dst=0, object_ids={ue: ue for ue in objects}, cfg=cfg)
    cycle, slots = tdma_slots(link, list(objects), cfg)
    assert rep.complete and cycle == 60_000 and link.air_log.overlaps() == []
    for src, start, length in link.air_log.bursts:
        grant = slots[src]
        assert grant is not None and grant.start_sample <= start % cycle
        assert start % cycle + length <= grant.end_sample
    with pytest.raises(LinkError, match="3 senders leave 2560-sample slots in a 8000-sample TDMA cycle, less than one"):
        tdma_slots(link, list(objects), replace(cfg, tdma_cycle_samples=8000))
