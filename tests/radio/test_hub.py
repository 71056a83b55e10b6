"""The virtual-RF hub over ZeroMQ: same samples as the in-process air, bad peers refused, others served."""

import subprocess
import sys
import threading

import msgspec
import numpy as np
import pytest
import zmq
from conftest import RADIO

from testbed.errors import ConfigError, RadioError
from testbed.radio.air import Air
from testbed.radio.hub_client import HubRadio
from testbed.radio.protocol import PROTOCOL_VERSION, Hello, Receive, Transmit, decode_reply, encode

BURST = (np.exp(2j * np.pi * 0.01 * np.arange(3000)) * 0.9).astype(np.complex64)


def _node(endpoint, node_id, out, transmit_at=None, windows=(2000, 3000)):
    with HubRadio(endpoint, node_id, timeout_s=10) as radio:
        radio.configure(RADIO)
        if transmit_at is not None:
            radio.transmit(BURST, transmit_at)
        out[node_id] = [radio.receive(n) for n in windows]


def _run_nodes(endpoint, specs):
    out, threads = {}, []
    for node_id, at in specs:
        t = threading.Thread(target=_node, args=(endpoint, node_id, out, at), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=20)
    return out


def test_hub_gives_the_in_process_samples(hub, scenario):
    out = _run_nodes(hub.endpoint, [("bs", 100), ("ue1", None), ("ue2", 2500)])
    air = Air(scenario)
    for nid in ("bs", "ue1", "ue2"):
        air.join(nid)
        air.set_radio(nid, RADIO.tx_power_dbm, "manual", RADIO.rx_gain_db)
    air.transmit("bs", BURST, 100)
    air.transmit("ue2", BURST, 2500)
    for nid in ("bs", "ue1", "ue2"):
        expected = []
        for n in (2000, 3000):
            air.request(nid, n)
            expected.append(air.collect(nid))
        got = out[nid]
        assert [b.start_sample for b in got] == [0, 2000]
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g.iq, e.iq)


def test_same_node_ids_join_again_and_get_the_first_sessions_samples(hub):
    specs = [("bs", 100), ("ue1", None), ("ue2", 2500)]
    first, second = _run_nodes(hub.endpoint, specs), _run_nodes(hub.endpoint, specs)
    assert sorted(first) == sorted(second) == ["bs", "ue1", "ue2"]
    for nid, blocks in first.items():
        assert [b.start_sample for b in second[nid]] == [b.start_sample for b in blocks] == [0, 2000]
        for a, b in zip(blocks, second[nid], strict=True):
            np.testing.assert_array_equal(a.iq, b.iq)


def test_query_tells_the_air_without_joining(hub, scenario):
    with HubRadio(hub.endpoint, "bs", timeout_s=5) as asking:
        info = asking.query()
        assert (info.center_freq_hz, info.sample_rate_hz) == (scenario.center_freq_hz, scenario.sample_rate_hz)
        assert info.tx_power_dbm == {n.id: n.tx_power_dbm for n in scenario.nodes}
        with pytest.raises(RadioError, match="not joined"):
            asking.start_sample  # noqa: B018
        with HubRadio(hub.endpoint, "bs", timeout_s=5) as joining:  # the id is still free
            joining.configure(RADIO.with_(center_freq_hz=info.center_freq_hz, sample_rate_hz=info.sample_rate_hz))
            assert joining.start_sample == 0


def _raw(endpoint):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    return sock


def _ask(sock, frames):
    sock.send_multipart(frames)
    return decode_reply(sock.recv_multipart())[0]


def test_malformed_messages_get_errors_and_the_hub_keeps_serving(hub):
    sock = _raw(hub.endpoint)
    hello = msgspec.msgpack.encode(Hello(PROTOCOL_VERSION, "ue2", 2.4e9, 2.5e6))
    cases = [
        ([b"\xc1garbage"], "malformed"),
        ([msgspec.msgpack.encode({"type": "launch"})], "malformed"),
        (encode(Receive(10)), "Hello first"),
        ([msgspec.msgpack.encode(Hello(PROTOCOL_VERSION + 1, "ue2", 2.4e9, 2.5e6))], "version"),
        ([msgspec.msgpack.encode(Hello(PROTOCOL_VERSION, "ghost", 2.4e9, 2.5e6))], "unknown node id"),
        ([msgspec.msgpack.encode(Hello(PROTOCOL_VERSION, "ue2", 915e6, 2.5e6))], "configure the radio"),
        ([hello, b"extra"], "no extra frames"),
    ]
    for frames, fragment in cases:
        reply = _ask(sock, frames)
        assert fragment in reply.message, (frames, reply)
    assert type(_ask(sock, [hello])).__name__ == "Welcome"
    bad_tx = [
        (encode(Transmit(4))[0], np.zeros(3, np.complex64).tobytes()),
        (encode(Transmit(1))[0], np.array([np.nan], np.complex64).tobytes()),
        (encode(Transmit(1, at_sample=0))[0], b"1234567"),
    ]
    for head, payload in bad_tx:
        assert type(_ask(sock, [head, payload])).__name__ == "Error"
    sock.close()  # ue2 vanishes without Bye
    out = _run_nodes(hub.endpoint, [("bs", 0), ("ue1", None)])
    assert sorted(out) == ["bs", "ue1"]
    assert hub.errors_sent == len(cases) + len(bad_tx)


def test_duplicate_and_unknown_nodes_are_refused(hub):
    with HubRadio(hub.endpoint, "bs", timeout_s=5) as first:
        first.configure(RADIO)
        with HubRadio(hub.endpoint, "bs", timeout_s=5) as second, pytest.raises(RadioError, match="already"):
            second.configure(RADIO)
        with HubRadio(hub.endpoint, "ghost", timeout_s=5) as ghost, pytest.raises(ConfigError, match="ghost"):
            ghost.configure(RADIO)


def test_node_vanishing_mid_burst_releases_the_clock(hub):
    sock = _raw(hub.endpoint)
    assert type(_ask(sock, [msgspec.msgpack.encode(Hello(PROTOCOL_VERSION, "ue2", 2.4e9, 2.5e6))])).__name__ == (
        "Welcome"
    )
    burst = np.ones(4000, np.complex64)
    assert _ask(sock, encode(Transmit(4000, at_sample=0), burst)).start_sample == 0
    sock.send_multipart(encode(Receive(1000)))  # the radio runs until sample 1000, then the process dies
    sock.close(linger=2000)  # linger: the Receive must leave before the connection drops
    out = _run_nodes(hub.endpoint, [("bs", None), ("ue1", None)])
    iq = np.concatenate([b.iq for b in out["bs"]])
    p = np.abs(iq) ** 2
    assert p[50:950].mean() > 10 * p[1100:].mean()  # 13 dB SNR while on, noise only after the cut


def test_client_times_out_with_a_clear_error(hub):
    with HubRadio(hub.endpoint, "bs", timeout_s=10) as radio:
        radio.configure(RADIO)
        radio.timeout_s = 0.3
        with pytest.raises(RadioError, match="no reply from the hub"):
            radio.receive(100)  # ue1 and ue2 never join, so the window never completes


def test_hub_refuses_non_local_endpoints(scenario):
    from testbed.radio.hub_server import HubServer

    with pytest.raises(ConfigError, match="not local"):
        HubServer(scenario, "tcp://0.0.0.0:5555")


CLI = "import sys; from testbed.cli import main; sys.exit(main())"
NODE_SCRIPT = """
import sys, time, numpy as np
from testbed.radio.base import RadioConfig
from testbed.radio.hub_client import HubRadio
r = HubRadio(sys.argv[1], sys.argv[2], timeout_s=20)
r.configure(RadioConfig(tx_power_dbm=0.0, rx_gain_db=0.0))
r.transmit(np.ones(100_000, np.complex64), r.start_sample)
print("sent", r.start_sample, flush=True)
r.receive(1000)
print("received", flush=True)
time.sleep(60)  # the test kills this process here: its clock stays at sample 1000
"""


def test_hub_process_survives_a_killed_node_which_then_comes_back(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'seed = 1\n[[nodes]]\nid = "a"\nposition_m = [0.0, 0.0]\n[[nodes]]\nid = "b"\nposition_m = [5.0, 0.0]\n'
    )
    hub = subprocess.Popen(
        [sys.executable, "-c", CLI, "hub", "--scenario", str(scenario), "--json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    node = None
    try:
        endpoint = msgspec.json.decode(hub.stdout.readline())["endpoint"]
        node = subprocess.Popen([sys.executable, "-c", NODE_SCRIPT, endpoint, "a"], stdout=subprocess.PIPE, text=True)
        with HubRadio(endpoint, "b", timeout_s=20) as b:
            b.configure(RADIO.with_(rx_gain_db=0.0))
            assert node.stdout.readline().strip() == "sent 0"
            first = b.receive(1000)
            assert node.stdout.readline().strip() == "received"
            node.kill()
            node.wait(timeout=10)
            rest = b.receive(200_000)  # completes only once the hub has noticed the dead node
            node = subprocess.Popen(  # restarted, like a daemon under systemd: same id, the clock has moved on
                [sys.executable, "-c", NODE_SCRIPT, endpoint, "a"], stdout=subprocess.PIPE, text=True
            )
            assert node.stdout.readline().strip() == f"sent {rest.end_sample}"  # it joined at b's frontier
            again = b.receive(1000)
        noise = np.mean(np.abs(rest.iq[10_000:]) ** 2)
        assert np.mean(np.abs(first.iq) ** 2) > 100 * noise
        assert np.mean(np.abs(again.iq) ** 2) > 100 * noise
        assert hub.poll() is None
    finally:
        for proc in (node, hub):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
