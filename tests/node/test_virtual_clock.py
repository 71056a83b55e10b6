"""The air's clock as virtual time (testbed/node/pump.py pause/resume, testbed/node/shell.py): on the hub's
unpaced air a paused node holds every other node's clock, however long the pause lasts in wall time, and what it
sends after ``resume(n)`` starts n samples after the clock it paused at."""

from __future__ import annotations

import threading
import time

from testbed.link.placement import Job
from testbed.node.actions import Received
from testbed.node.config import AirConfig
from testbed.node.pump import RadioPump
from testbed.radio.base import RadioConfig
from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_server import HubServer
from testbed.radio.scenario import scenario_from_dict

RATE_HZ = 1_000_000.0
SCENARIO = scenario_from_dict({"seed": 4, "sample_rate_hz": RATE_HZ, "noise_floor_dbm": -90.0, "nodes": [
    {"id": "bs", "position_m": [0.0, 0.0]}, {"id": "ue1", "position_m": [20.0, 0.0]}]})  # fmt: skip
AIR = AirConfig(sample_rate_hz=RATE_HZ, realtime_factor=0.0)
COMPUTE_SAMPLES = 300_000  # 0.3 s of modelled compute


def _pump(endpoint: str, node: str, stream_id: int) -> RadioPump:
    def open_radio(cancel: threading.Event) -> HubRadio:
        radio = HubRadio(endpoint, node, timeout_s=60.0, cancel=cancel)
        radio.configure(RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=RATE_HZ, tx_power_dbm=0.0))
        return radio

    return RadioPump(open_radio, AIR, stream_id)


def test_a_paused_node_holds_the_air_and_sends_after_its_modelled_compute() -> None:
    server = HubServer(SCENARIO, "tcp://127.0.0.1:*")
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop, 0.02), daemon=True)
    thread.start()
    bs, ue = _pump(server.endpoint, "bs", 0), _pump(server.endpoint, "ue1", 1)
    try:
        for p in (bs, ue):
            p.start()
        assert bs.wait_ready(60.0) and ue.wait_ready(60.0)
        ue.pause()
        time.sleep(0.5)  # the pause takes effect at the UE's next pass
        held = ue.cursor
        time.sleep(1.5)  # host time that must not show on the air
        assert ue.cursor == held and bs.cursor <= held, (bs.cursor, held)
        ue.resume(COMPUTE_SAMPLES)
        ue.submit(Job(1, [(7, b"after the modelled compute")], "bpsk-1/2"))
        heard: list[Received] = []
        end = time.monotonic() + 60.0
        while not heard and time.monotonic() < end:
            heard = [e for e in bs.events() if isinstance(e, Received) and e.frame.payload is not None]
            time.sleep(0.05)
        assert heard and heard[0].frame.payload == b"after the modelled compute"
        assert held + COMPUTE_SAMPLES <= heard[0].start_sample < held + COMPUTE_SAMPLES + 64, (heard[0], held)
    finally:
        for p in (bs, ue):
            p.stop(10.0)
        stop.set()
        thread.join(timeout=5)
        server.close()
