"""End to end over the hub: BS and 4 UEs as separate processes exchange OFDM frames; SNR and CFO match the
scenario; the result equals the same nodes run in one process. A SigMF capture replays to the same frames."""

import hashlib
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import RADIO, make_scenario

from testbed.phy import OfdmModem, PhyConfig
from testbed.radio.air import Air
from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_server import HubServer
from testbed.radio.links import configured_snr_db
from testbed.radio.loopback import LoopbackRadio
from testbed.radio.scenario import load_scenario
from testbed.radio.sigmf_io import RecordingRadio, SigmfReplayRadio

HERE = Path(__file__).parent
SCENARIO = HERE / "e2e_scenario.toml"
ROUNDS, PAYLOAD_BYTES = 2, 100
CLI = "import sys; from testbed.cli import main; sys.exit(main())"


def _run_network(tmp_path: Path) -> dict[str, list[dict]]:
    """Hub + one process per node; returns each node's decoded frames. Every process is reaped."""
    endpoint = f"ipc://{tmp_path}/hub"
    sc = load_scenario(SCENARIO)
    procs: list[subprocess.Popen] = []
    try:
        hub = subprocess.Popen(
            [sys.executable, "-c", CLI, "hub", "--scenario", str(SCENARIO), "--endpoint", endpoint, "--json"],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(hub)
        assert json.loads(hub.stdout.readline())["endpoint"] == endpoint
        nodes = {
            nid: subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "hub_node.py"),
                    endpoint,
                    str(SCENARIO),
                    nid,
                    str(ROUNDS),
                    str(PAYLOAD_BYTES),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for nid in sc.node_ids
        }
        procs += nodes.values()
        out = {}
        for nid, proc in nodes.items():
            stdout, _ = proc.communicate(timeout=180)
            assert proc.returncode == 0, nid
            out[nid] = json.loads(stdout)["frames"]
        return out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_bs_and_four_ues_over_the_hub(tmp_path):
    sys.path.insert(0, str(HERE))
    from hub_node import payload, radio_config, receive_frames, send_frames

    sc = load_scenario(SCENARIO)
    spacing_hz = PhyConfig(sample_rate_hz=sc.sample_rate_hz).subcarrier_spacing_hz
    first = _run_network(tmp_path)
    # The same run again, now all five nodes in this process over the loopback backend: identical frames,
    # SNRs and CFOs, so the outcome depends on the seed only, not on process scheduling.
    air, modem = Air(sc), OfdmModem(PhyConfig(sample_rate_hz=sc.sample_rate_hz))
    radios = {nid: LoopbackRadio(air, nid) for nid in sc.node_ids}
    for nid, radio in radios.items():
        radio.configure(radio_config(sc, nid))
        send_frames(radio, sc, nid, modem, ROUNDS, PAYLOAD_BYTES)
    second = {nid: receive_frames(radio, sc, modem, ROUNDS, PAYLOAD_BYTES) for nid, radio in radios.items()}
    assert first == second

    links = [("bs", ue) for ue in sc.node_ids[1:]] + [(ue, "bs") for ue in sc.node_ids[1:]]
    for tx, rx in links:
        sender = sc.node_ids.index(tx)
        frames = [f for f in first[rx] if f["from"] == sender]
        assert sorted(f["seq"] for f in frames) == list(range(ROUNDS)), (tx, rx)
        for f in frames:
            assert (
                f["crc_ok"]
                and f["sha"] == hashlib.sha256(payload(sc.seed, sender, f["seq"], PAYLOAD_BYTES)).hexdigest()
            )
            assert abs(f["cfo_hz"] - sc.cfo_hz(tx, rx)) < 0.02 * spacing_hz, (tx, rx, f)
        measured_db = 10 * math.log10(np.mean([10 ** (f["snr_db"] / 10) for f in frames]))
        assert measured_db == pytest.approx(configured_snr_db(sc, tx, rx), abs=1.0), (tx, rx)


def _run_threads() -> dict[str, list[dict]]:
    """The same five nodes as threads against an in-thread hub (scheduling left to the OS)."""
    sys.path.insert(0, str(HERE))
    from hub_node import radio_config, receive_frames, send_frames

    sc = load_scenario(SCENARIO)
    hub = HubServer(sc)
    stop = threading.Event()
    serving = threading.Thread(target=hub.serve, args=(stop, 0.02), daemon=True)
    serving.start()
    out: dict[str, list[dict]] = {}

    def node(nid: str) -> None:
        modem = OfdmModem(PhyConfig(sample_rate_hz=sc.sample_rate_hz))
        with HubRadio(hub.endpoint, nid, timeout_s=60) as radio:
            radio.configure(radio_config(sc, nid))
            send_frames(radio, sc, nid, modem, ROUNDS, PAYLOAD_BYTES)
            out[nid] = receive_frames(radio, sc, modem, ROUNDS, PAYLOAD_BYTES)

    threads = [threading.Thread(target=node, args=(nid,), daemon=True) for nid in sc.node_ids]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        stop.set()
        serving.join(timeout=5)
        hub.close()
    return out


def test_same_seed_twice_gives_identical_results():
    first, second = _run_threads(), _run_threads()
    assert sorted(first) == load_scenario(SCENARIO).node_ids
    assert all(len(frames) >= 4 for frames in first.values())
    assert first == second


@pytest.mark.parametrize("datatype", ["cf32_le", "ci16_le"])
def test_sigmf_capture_replays_to_the_same_frames(tmp_path, datatype):
    modem = OfdmModem(PhyConfig(sample_rate_hz=2.5e6))
    air = Air(make_scenario(seed=4))
    bs = LoopbackRadio(air, "bs")
    bs.configure(RADIO)
    ue = RecordingRadio(LoopbackRadio(air, "ue1"), tmp_path / "cap", datatype=datatype)
    ue.configure(RADIO)
    payloads = [bytes(np.random.default_rng(k).integers(0, 256, 200, dtype=np.uint8)) for k in range(3)]
    at = 300
    for k, p in enumerate(payloads):
        burst = modem.modulate(p, "16qam-1/2", stream_id=1, seq=k)
        bs.transmit(burst, at)
        at += burst.size + 500
    live_iq = np.concatenate([ue.receive(n).iq for n in (4000, 4000, at + 300 - 8000)])
    live = modem.demodulate(live_iq)
    for f in live:
        ue.annotate(f.start, 100, f"frame {f.seq}", snr_db=f.snr_db, cfo_hz=f.cfo_hz, crc_ok=f.crc_ok)
    ue.close()

    replay = SigmfReplayRadio(tmp_path / "cap-rx")
    replay.configure(RADIO)
    replayed = modem.demodulate(replay.receive(replay.remaining).iq)
    assert [f.payload for f in live] == payloads
    assert [f.payload for f in replayed] == payloads  # bit for bit
    if datatype == "cf32_le":
        assert [(f.snr_db, f.cfo_hz, f.start) for f in replayed] == [(f.snr_db, f.cfo_hz, f.start) for f in live]
    assert [a["core:label"] for a in replay.annotations()] == ["frame 0", "frame 1", "frame 2"]
