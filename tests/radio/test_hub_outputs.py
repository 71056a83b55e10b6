"""The hub's optional outputs: a raw-IQ PUB tap per node and SigMF captures of what nodes receive."""

import signal
import subprocess
import sys
import threading

import msgspec
import numpy as np
import pytest
import sigmf
import zmq
from conftest import RADIO, make_scenario

from testbed.errors import ConfigError
from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_outputs import HubOutputs, hub_capture_args
from testbed.radio.hub_server import HubServer
from testbed.radio.scenario import load_scenario
from testbed.radio.sigmf_io import SigmfReplayRadio

CLI = "import sys; from testbed.cli import main; sys.exit(main())"
BURST = (np.exp(2j * np.pi * 0.02 * np.arange(2000)) * 0.8).astype(np.complex64)


def _serve(outputs, **scenario):
    hub = HubServer(make_scenario(wait_for_all_nodes=False, **scenario), outputs=outputs)
    stop = threading.Event()
    thread = threading.Thread(target=hub.serve, args=(stop, 0.02), daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(timeout=5)
        hub.close()

    return hub, close


def test_tap_publishes_exactly_the_blocks_the_node_receives():
    hub, close = _serve(HubOutputs(taps={"ue1": "tcp://127.0.0.1:*"}))
    sub = zmq.Context.instance().socket(zmq.SUB)
    try:
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(hub.outputs.endpoints["ue1"])
        with HubRadio(hub.endpoint, "ue1", timeout_s=10) as ue:
            ue.configure(RADIO.with_(rx_gain_db=10.0))
            got, blocks = [], []
            for _ in range(200):  # PUB drops until the subscription has reached it: receive until one arrives
                blocks.append(ue.receive(1024))
                if sub.poll(100):
                    break
            for n in (1000, 3000, 512):
                blocks.append(ue.receive(n))
            while sub.poll(1000):
                got.append(np.frombuffer(sub.recv(), dtype="<c8"))
    finally:
        sub.close(linger=0)
        close()
    assert len(got) >= 4
    first = next(k for k, b in enumerate(blocks) if np.array_equal(b.iq, got[0]))  # what the tap saw first
    assert len(got) == len(blocks) - first
    for block, message in zip(blocks[first:], got, strict=True):
        np.testing.assert_array_equal(message, block.iq)  # complex64, bit for bit


def test_transmit_tap_publishes_each_burst_as_sent(rng):
    hub, close = _serve(HubOutputs(tx_taps={"bs": "tcp://127.0.0.1:*"}))
    sub = zmq.Context.instance().socket(zmq.SUB)
    try:
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(hub.outputs.tx_endpoints["bs"])
        assert hub.outputs.endpoints == {}  # no receive tap asked for
        with HubRadio(hub.endpoint, "bs", timeout_s=10) as bs:
            bs.configure(RADIO)
            sent, got = [], []

            def send(k):
                sent.append((rng.standard_normal(300 + k) * 0.3 + 0.1j).astype(np.complex64))
                bs.transmit(sent[-1])
                bs.receive(sent[-1].size)  # moves the clock past the burst

            for k in range(200):  # PUB drops until the subscription has reached it: send until one arrives
                send(k)
                if sub.poll(100):
                    break
            for k in range(3):
                send(k)
            while sub.poll(1000):
                got.append(np.frombuffer(sub.recv(), dtype="<c8"))
    finally:
        sub.close(linger=0)
        close()
    first = next(k for k, b in enumerate(sent) if np.array_equal(b, got[0]))
    assert len(got) == len(sent) - first >= 4
    for burst, message in zip(sent[first:], got, strict=True):
        np.testing.assert_array_equal(message, burst)  # as sent, before the channel


def test_captures_hold_what_the_node_received_and_its_settings(tmp_path):
    _hub, close = _serve(HubOutputs(capture_dir=tmp_path / "cap", capture_nodes=("ue1",)))
    try:
        with HubRadio(_hub.endpoint, "bs", timeout_s=10) as bs, HubRadio(_hub.endpoint, "ue1", timeout_s=10) as ue:
            bs.configure(RADIO)
            ue.configure(RADIO.with_(rx_gain_db=6.0))
            bs.transmit(BURST, 500)
            out: dict = {}
            thread = threading.Thread(target=lambda: out.setdefault("bs", bs.receive(6000)), daemon=True)
            thread.start()
            blocks = [ue.receive(n) for n in (2500, 3500)]
            thread.join(timeout=10)
    finally:
        close()
    replay = SigmfReplayRadio(tmp_path / "cap" / "ue1-rx")
    replay.configure(RADIO)
    np.testing.assert_array_equal(replay.receive(6000).iq, np.concatenate([b.iq for b in blocks]))
    rec = sigmf.fromfile(str(tmp_path / "cap" / "ue1-rx"))
    assert rec.get_global_field("core:sample_rate") == RADIO.sample_rate_hz
    assert rec.get_global_field("testbed:hw_node") == "ue1"
    (cap,) = rec.get_captures()
    assert cap["core:frequency"] == RADIO.center_freq_hz and cap["testbed:rx_gain_db"] == 6.0
    assert not (tmp_path / "cap" / "bs-rx.sigmf-data").exists()  # only the nodes asked for


def test_bad_outputs_are_refused_before_the_hub_serves(tmp_path):
    sc = make_scenario()
    with pytest.raises(ConfigError, match="unknown node id 'nobody'"):
        HubServer(sc, outputs=HubOutputs(taps={"nobody": "tcp://127.0.0.1:*"}))
    with pytest.raises(ConfigError, match="not local"):
        HubServer(sc, outputs=HubOutputs(taps={"ue1": "tcp://0.0.0.0:5999"}))
    with pytest.raises(ConfigError, match="directory"):
        HubServer(sc, outputs=HubOutputs(capture_nodes=("ue1",)))
    with pytest.raises(ConfigError, match="unknown node id"):
        hub_capture_args(sc, ["ue1", "ue9"], tmp_path)
    with pytest.raises(ConfigError, match="at least one"):
        hub_capture_args(sc, [], tmp_path)


def test_hub_capture_args_make_a_hub_process_write_captures(tmp_path):
    """The hook `testbed sim` calls: the hub process, given these arguments, leaves a replayable capture."""
    scenario = tmp_path / "s.toml"
    scenario.write_text('seed = 2\nwait_for_all_nodes = false\n[[nodes]]\nid = "a"\nposition_m = [0.0, 0.0]\n')
    args = hub_capture_args(load_scenario(scenario), ["a"], tmp_path)
    hub = subprocess.Popen([sys.executable, "-c", CLI, "hub", "--scenario", str(scenario), "--json", *args],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        ready = msgspec.json.decode(hub.stdout.readline())
        assert ready["captures"] == {"a": str(tmp_path / "a-rx")}
        with HubRadio(ready["endpoint"], "a", timeout_s=20) as a:
            a.configure(RADIO)
            block = a.receive(4096)
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(timeout=20) == 0
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait(timeout=10)
    replay = SigmfReplayRadio(tmp_path / "a-rx")
    replay.configure(RADIO)
    np.testing.assert_array_equal(replay.receive(4096).iq, block.iq)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [(["--tap", "ue1"], "NODE=ENDPOINT"), (["--capture-dir", "x"], "at least one --capture")],
)
def test_hub_cli_refuses_bad_output_options(tmp_path, capsys, extra, fragment):
    from testbed.cli import main

    scenario = tmp_path / "s.toml"
    scenario.write_text('[[nodes]]\nid = "ue1"\nposition_m = [0.0, 0.0]\n')
    assert main(["hub", "--scenario", str(scenario), "--json", *extra]) == 2
    assert fragment in msgspec.json.decode(capsys.readouterr().out.strip())["error"]
