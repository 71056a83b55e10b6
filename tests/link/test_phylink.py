"""The link over the real OFDM modem and simulated channels (tiny payloads: full DSP runs here)."""

import pytest

from testbed.channel import Awgn, Chain, FrequencyOffset, Multipath
from testbed.errors import LinkError
from testbed.link.arq import LinkConfig, broadcast, uplink
from testbed.link.mcs import McsPolicy
from testbed.link.medium import SimulatedMedium
from testbed.link.phylink import PhyFrameLink
from testbed.link.tracker import ChannelTracker
from testbed.phy import OfdmModem, PhyConfig

PHY = PhyConfig()
CFG = LinkConfig(frame_payload_bytes=1000, window_samples=20_000)


def _awgn(snr_db, rng):
    return Awgn(snr_db, rng, occupied_fraction=PHY.occupied_fraction)


def test_broadcast_over_multipath_cfo_and_loss_is_bit_exact(rng):
    links = {
        (0, 1): Chain([Multipath(1.0, rng), FrequencyOffset(3000.0, PHY.sample_rate_hz), _awgn(25.0, rng)]),
        (0, 2): _awgn(12.0, rng),
        (0, 3): _awgn(30.0, rng),
    }
    medium = SimulatedMedium(PHY.sample_rate_hz, links, rng, frame_loss=0.2)
    link = PhyFrameLink(OfdmModem(PHY), medium)
    data = rng.bytes(6000)
    tracker = ChannelTracker()
    rep = broadcast(link, data, src=0, receivers=[1, 2, 3], object_id=3, cfg=CFG, tracker=tracker)
    assert [d.data == data for d in rep.deliveries] == [True, True, True]
    assert rep.frames_resent > 0 and rep.burst_samples == medium.air_log.samples_on_air
    # the weakest receiver (12 dB) limits the broadcast MCS: 16QAM 1/2 needs 9.5 + 3 dB
    assert set(rep.mcs_frames) <= {"bpsk-1/2", "qpsk-3/4", "qpsk-1/2"}
    by_rx = {c.rx_node: c for c in rep.channel}
    assert by_rx[3].snr_db == pytest.approx(30.0, abs=2.0) and by_rx[2].snr_db == pytest.approx(12.0, abs=2.0)
    assert by_rx[1].cfo_hz == pytest.approx(3000.0, abs=100.0)
    assert len(by_rx[1].channel_re) == PHY.num_used and by_rx[3].mean_gain_db == pytest.approx(0.0, abs=1.0)


def test_uplink_four_ues_in_tdma_slots_no_overlap_intact(rng):
    ues = (1, 2, 3, 4)
    links = {(ue, 0): _awgn(20.0 + 2 * ue, rng) for ue in ues}
    medium = SimulatedMedium(PHY.sample_rate_hz, links, rng, frame_loss=0.1)
    link = PhyFrameLink(OfdmModem(PHY), medium)
    objects = {ue: rng.bytes(1500 * ue) for ue in ues}
    rep = uplink(link, objects, dst=0, object_ids={ue: ue for ue in ues}, cfg=CFG)
    assert {d.src: d.data for d in rep.deliveries} == objects
    assert medium.air_log.overlaps() == []
    starts = {}
    for src, start, _ in medium.air_log.bursts:
        starts.setdefault(src, []).append(start)
    assert set(starts) == set(ues)
    assert {c.tx_node for c in rep.channel} == set(ues)


def test_unreachable_receiver_fails_clearly(rng):
    links = {(0, 1): _awgn(30.0, rng), (0, 2): _awgn(-10.0, rng)}
    medium = SimulatedMedium(PHY.sample_rate_hz, links, rng)
    link = PhyFrameLink(OfdmModem(PHY), medium)
    cfg = LinkConfig(frame_payload_bytes=1000, max_passes=2, mcs=McsPolicy(fixed_mcs="qpsk-1/2"))
    with pytest.raises(LinkError, match="node 2: no frame of object 5 from node 0 arrived"):
        broadcast(link, rng.bytes(2500), src=0, receivers=[1, 2], object_id=5, cfg=cfg)


def test_sample_rate_mismatch_and_missing_link_are_refused(rng):
    with pytest.raises(LinkError, match="same sample rate"):
        PhyFrameLink(OfdmModem(PHY), SimulatedMedium(1e6, {}, rng))
    link = PhyFrameLink(OfdmModem(PHY), SimulatedMedium(PHY.sample_rate_hz, {}, rng))
    with pytest.raises(LinkError, match=r"no channel model from node 0 to node 1"):
        broadcast(link, b"abc", src=0, receivers=[1], object_id=0, cfg=CFG)
