"""The link over testbed.radio backends (loopback, ZeroMQ hub): path loss, crystal CFO and clock offsets."""

import threading

import pytest

from testbed.errors import LinkError
from testbed.link.arq import LinkConfig, broadcast, uplink
from testbed.link.phylink import PhyFrameLink
from testbed.link.radiomedium import RadioMedium
from testbed.phy import OfdmModem, PhyConfig
from testbed.radio.air import Air
from testbed.radio.base import RadioConfig
from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_server import HubServer
from testbed.radio.links import configured_snr_db
from testbed.radio.loopback import LoopbackRadio
from testbed.radio.scenario import scenario_from_dict

NODES = {0: "bs", 1: "ue1", 2: "ue2", 3: "ue3"}
SCENARIO = scenario_from_dict({"seed": 3, "sample_rate_hz": 2.5e6, "noise_floor_dbm": -90.0, "nodes": [
    {"id": "bs", "position_m": [0.0, 0.0]},
    {"id": "ue1", "position_m": [30.0, 0.0], "crystal_ppm": 3.0},
    {"id": "ue2", "position_m": [0.0, 60.0], "crystal_ppm": -2.0},
    {"id": "ue3", "position_m": [-100.0, 0.0], "crystal_ppm": 1.0}]})  # fmt: skip
RADIO = RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=2.5e6, tx_power_dbm=0.0, rx_gain_db=0.0)


def _link() -> tuple[PhyFrameLink, RadioMedium]:
    air = Air(SCENARIO)
    radios = {n: LoopbackRadio(air, name) for n, name in NODES.items()}
    for r in radios.values():
        r.configure(RADIO)
    medium = RadioMedium(radios)
    return PhyFrameLink(OfdmModem(PhyConfig()), medium), medium


def test_broadcast_and_uplink_over_loopback_radios(rng):
    link, medium = _link()
    data = rng.bytes(5000)
    cfg = LinkConfig(frame_payload_bytes=1200, window_samples=20_000)
    rep = broadcast(link, data, src=0, receivers=[1, 2, 3], object_id=1, cfg=cfg)
    assert [d.data == data for d in rep.deliveries] == [True, True, True]
    for c in rep.channel:
        ue = NODES[c.rx_node]
        assert c.snr_db == pytest.approx(configured_snr_db(SCENARIO, "bs", ue), abs=1.5)
        assert c.cfo_hz == pytest.approx(SCENARIO.cfo_hz("bs", ue), abs=50.0)
    objects = {ue: rng.bytes(2000 + 500 * ue) for ue in (1, 2, 3)}
    up = uplink(link, objects, dst=0, object_ids={ue: 10 + ue for ue in objects}, cfg=cfg)
    assert {d.src: d.data for d in up.deliveries} == objects
    assert medium.air_log.overlaps() == []
    # the UEs' SNRs differ (21, 15, 11 dB), so adaptive MCS gives them different MCSs
    assert len(set(up.mcs_frames) - {"bpsk-1/2"}) == 3


def test_medium_refuses_unknown_nodes(rng):
    link, _ = _link()
    with pytest.raises(LinkError, match=r"no radio for node\(s\) \[7\]"):
        broadcast(link, b"x", src=0, receivers=[7], object_id=1, cfg=LinkConfig())


def test_broadcast_over_the_zeromq_hub_with_parallel_receive(rng):
    server = HubServer(SCENARIO, "tcp://127.0.0.1:*")
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop, 0.02), daemon=True)
    thread.start()
    radios = {}
    try:
        radios = {n: HubRadio(server.endpoint, name, timeout_s=30.0) for n, name in NODES.items()}
        for r in radios.values():
            r.configure(RADIO)
        link = PhyFrameLink(OfdmModem(PhyConfig()), RadioMedium(radios, parallel_receive=True))
        data = rng.bytes(3000)
        rep = broadcast(link, data, src=0, receivers=[1, 2, 3], object_id=2, cfg=LinkConfig(frame_payload_bytes=1200))
        assert [d.data == data for d in rep.deliveries] == [True, True, True]
    finally:
        for r in radios.values():
            r.close()
        stop.set()
        thread.join(timeout=5)
        server.close()
