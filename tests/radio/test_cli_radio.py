"""`testbed radio txrx` over loopback and hub, `testbed radio probe` against the fake adi, `testbed hub` errors."""

import json
import sys
import threading

import pluto_fake
import pytest
import sigmf

import testbed
from testbed.cli import main
from testbed.phy import PhyConfig
from testbed.radio.base import RadioConfig
from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_server import HubServer
from testbed.radio.scenario import load_scenario

SCENARIO = """
seed = 9
noise_floor_dbm = -90.0
wait_for_all_nodes = false
[[nodes]]
id = "bs"
position_m = [0.0, 0.0]
[[nodes]]
id = "ue-1"
position_m = [25.0, 0.0]
crystal_ppm = 3.0
[[nodes]]
id = "ue-2"
position_m = [0.0, 400.0]
"""


RADIO = RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=2.5e6)


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    return path


def _json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_txrx_loopback_reports_per_snr_cfo_and_records(scenario_file, tmp_path, capsys):
    stem = tmp_path / "rec"
    args = ["radio", "txrx", "--backend", "loopback", "--scenario", str(scenario_file), "--frames", "4"]
    assert main([*args, "--record", str(stem), "--json"]) == 0
    r = _json(capsys)
    sc = load_scenario(scenario_file)
    assert r["frames_ok"] == 4 and r["per"] == 0.0
    assert abs(r["cfo_hz_mean"] - sc.cfo_hz("bs", "ue-1")) < 500
    rec = sigmf.fromfile(str(tmp_path / "rec-rx"))
    assert [a["core:label"] for a in rec.get_annotations()] == [f"frame {k}" for k in range(4)]
    width = PhyConfig(sample_rate_hz=sc.sample_rate_hz).occupied_bandwidth_hz  # 53 of 64 bins: 52 used + DC
    for ann in rec.get_annotations():  # the band viewers draw: the used subcarriers, shifted by the frame's CFO
        lower, upper = ann["core:freq_lower_edge"], ann["core:freq_upper_edge"]
        assert upper - lower == pytest.approx(width)
        assert (lower + upper) / 2 == pytest.approx(sc.center_freq_hz + ann["testbed:cfo_hz"])
    assert rec.get_global_field("testbed:version") == testbed.__version__
    assert rec.get_global_field("testbed:hw_node") == "ue-1"
    assert rec.get_captures()[0]["testbed:rx_gain_mode"] == "manual"


def test_txrx_loopback_far_node_loses_frames(scenario_file, capsys):
    args = ["radio", "txrx", "--backend", "loopback", "--scenario", str(scenario_file), "--frames", "3"]
    assert main([*args, "--rx-node", "ue-2", "--mcs", "64qam-3/4", "--json"]) == 0
    assert _json(capsys)["per"] > 0.0


@pytest.fixture
def scenario_hub(scenario_file):
    hub = HubServer(load_scenario(scenario_file))
    stop = threading.Event()
    thread = threading.Thread(target=hub.serve, args=(stop, 0.02), daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        stop.set()
        thread.join(timeout=5)
        hub.close()


def test_txrx_sessions_in_a_row_over_one_hub(scenario_hub, scenario_file, capsys):
    """A lab hub outlives its clients: the same node ids join again and every session decodes all frames."""
    args = ["radio", "txrx", "--backend", "hub", "--endpoint", scenario_hub.endpoint, "--frames", "3", "--json"]
    results = []
    for extra in (["--scenario", str(scenario_file)], ["--scenario", str(scenario_file)], []):
        assert main([*args, *extra]) == 0  # the last run asks the hub for carrier, rate and TX power
        results.append(_json(capsys))
    assert [r["frames_ok"] for r in results] == [3, 3, 3]
    assert results[0] == results[1] == results[2]  # each session on a fresh air: the same samples
    assert main([*args, "--tx-node", "ue-1", "--rx-node", "bs"]) == 0
    assert _json(capsys)["frames_ok"] == 3


def test_txrx_joins_an_air_that_is_already_running(scenario_hub, capsys):
    """Another node keeps the hub clock moving (as a daemon would): txrx starts mid-clock and still decodes."""
    stop, heard = threading.Event(), []

    def listener():
        with HubRadio(scenario_hub.endpoint, "ue-2", timeout_s=20) as radio:
            radio.configure(RADIO)
            while not stop.is_set():
                heard.append(radio.receive(4096))

    thread = threading.Thread(target=listener, daemon=True)
    thread.start()
    try:
        while len(heard) < 3:  # the clock has moved before txrx joins
            threading.Event().wait(0.01)
        args = ["radio", "txrx", "--backend", "hub", "--endpoint", scenario_hub.endpoint, "--frames", "3"]
        assert main([*args, "--json"]) == 0
        assert _json(capsys)["frames_ok"] == 3
    finally:
        stop.set()
        thread.join(timeout=10)


def test_txrx_reports_a_transmitter_failure_instead_of_a_hub_timeout(scenario_hub, monkeypatch, capsys):
    from testbed.errors import PhyError
    from testbed.phy import OfdmModem

    def broken(self, payload, mcs, stream_id, seq):
        raise PhyError("modulator broke on purpose")

    monkeypatch.setattr(OfdmModem, "modulate", broken)
    args = ["radio", "txrx", "--backend", "hub", "--endpoint", scenario_hub.endpoint, "--frames", "2"]
    assert main(args) == 2
    assert "modulator broke on purpose" in capsys.readouterr().err  # the receiver was not left waiting


def test_probe_against_fake_pluto(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "adi", pluto_fake.module())
    assert main(["radio", "probe", "--uri", "ip:192.168.2.1", "--json"]) == 0
    info = _json(capsys)
    assert info["fw_version"] == "v0.38" and info["lo_range_hz"] == [325e6, 3.8e9]
    assert main(["radio", "probe", "--uri", "ip:192.168.9.9"]) == 1  # absent radio: one line, a runtime failure
    assert "No device found" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, scenario_file, capsys):
    assert main(["radio", "txrx", "--backend", "pluto", "--json"]) == 2
    assert "--tx-uri" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = -1\n")
    assert main(["hub", "--scenario", str(bad)]) == 2
    assert "invalid scenario" in capsys.readouterr().err
    assert main(["hub", "--scenario", str(scenario_file), "--endpoint", "tcp://10.0.0.1:1"]) == 2
    assert "not local" in capsys.readouterr().err


def test_txrx_pluto_path_runs_against_fake_boards(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "adi", pluto_fake.module())
    args = ["radio", "txrx", "--backend", "pluto", "--tx-uri", "ip:192.168.2.1", "--rx-uri", "ip:192.168.3.1"]
    assert main([*args, "--frames", "2", "--tx-power-dbm", "-20", "--json"]) == 0
    r = _json(capsys)
    assert r["frames_sent"] == 2 and r["per"] == 1.0  # the fake receives a ramp, not the bursts
    tx_board, rx_board = pluto_fake.FakePluto.instances
    assert [c for c in tx_board.calls if c.startswith("tx(")] == ["tx(3360)", "tx(3360)"]  # 200-byte QPSK-1/2 bursts
    assert tx_board.calls[-3:] == ["tx_gain=-89.75", "tx_destroy", "rx_destroy"]
    assert rx_board.calls[-3:] == ["tx_gain=-89.75", "tx_destroy", "rx_destroy"]


def test_txrx_refuses_options_its_backend_would_ignore(scenario_file, capsys):
    loopback = ["radio", "txrx", "--backend", "loopback", "--scenario", str(scenario_file), "--frames", "1"]
    for extra, flag in (
        (["--center-freq-hz", "915e6"], "--center-freq-hz applies to --backend pluto, not loopback"),
        (["--tx-power-dbm", "0"], "--tx-power-dbm applies to --backend pluto, not loopback"),
        (["--endpoint", "tcp://127.0.0.1:1"], "--endpoint applies to --backend hub, not loopback"),
        (["--tx-uri", "ip:192.168.2.1"], "--tx-uri applies to --backend pluto, not loopback"),
    ):
        assert main([*loopback, *extra]) == 2
        assert flag in capsys.readouterr().err
    pluto = ["radio", "txrx", "--backend", "pluto", "--tx-uri", "ip:a", "--rx-uri", "ip:b", "--rx-node", "ue-1"]
    assert main(pluto) == 2
    assert "--rx-node applies to --backend hub or loopback, not pluto" in capsys.readouterr().err


def test_txrx_default_nodes_are_those_of_the_shipped_scenario(capsys):
    from pathlib import Path

    from testbed.cli.radio import DEFAULT_RX_NODE, DEFAULT_TX_NODE

    shipped = load_scenario(Path(__file__).parents[2] / "firmware_cfg" / "nodes" / "scenario.toml")
    ids = [n.id for n in shipped.nodes]
    assert DEFAULT_TX_NODE in ids and DEFAULT_RX_NODE in ids
    path = Path(__file__).parents[2] / "firmware_cfg" / "nodes" / "scenario.toml"
    assert main(["radio", "txrx", "--backend", "loopback", "--scenario", str(path), "--frames", "2", "--json"]) == 0
    assert _json(capsys)["frames_ok"] == 2


def test_txrx_with_no_arguments_is_a_loopback_demonstration_on_the_shipped_scenario(capsys):
    """The demonstration a new user runs first: loopback, firmware_cfg/nodes/scenario.toml, bs -> ue-1 (it used
    to stop with "the following arguments are required: --backend")."""
    assert main(["radio", "txrx", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "loopback" and out["frames_sent"] == 20 and out["frames_ok"] == 20
