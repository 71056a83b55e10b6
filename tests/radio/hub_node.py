"""One node of the end-to-end hub test: send its frames in its TDMA slots, receive the whole schedule,
demodulate; as a process it prints the decoded frames as one JSON line. The same functions run over the
in-process loopback so the test can compare both.

usage: python hub_node.py ENDPOINT SCENARIO NODE_ID ROUNDS PAYLOAD_BYTES
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

from testbed.phy import OfdmModem, PhyConfig
from testbed.radio.base import Radio, RadioConfig
from testbed.radio.hub_client import HubRadio
from testbed.radio.scenario import Scenario, load_scenario

MCS = "qpsk-1/2"
GUARD_SAMPLES = 400
CHUNK_SAMPLES = 8192


def payload(seed: int, sender: int, rnd: int, num_bytes: int) -> bytes:
    """The payload sender ``sender`` puts in round ``rnd`` (every process can regenerate it)."""
    return np.random.default_rng([seed, sender, rnd]).integers(0, 256, num_bytes, dtype=np.uint8).tobytes()


def schedule(modem: OfdmModem, num_nodes: int, rounds: int, num_bytes: int) -> tuple[int, int]:
    """(slot length, total samples) of the TDMA schedule: every node one slot per round."""
    slot = modem.burst_num_samples(num_bytes, MCS) + GUARD_SAMPLES
    return slot, rounds * num_nodes * slot + GUARD_SAMPLES


def radio_config(sc: Scenario, node_id: str) -> RadioConfig:
    return RadioConfig(
        center_freq_hz=sc.center_freq_hz,
        sample_rate_hz=sc.sample_rate_hz,
        tx_power_dbm=sc.node(node_id).tx_power_dbm,
        rx_gain_db=0.0,
    )


def send_frames(radio: Radio, sc: Scenario, node_id: str, modem: OfdmModem, rounds: int, num_bytes: int) -> None:
    """Declare this node's bursts, one per round in its own slot."""
    me = sc.node_ids.index(node_id)
    slot, _ = schedule(modem, len(sc.nodes), rounds, num_bytes)
    for rnd in range(rounds):
        burst = modem.modulate(payload(sc.seed, me, rnd, num_bytes), MCS, stream_id=me, seq=rnd)
        radio.transmit(burst, at_sample=(rnd * len(sc.nodes) + me) * slot + GUARD_SAMPLES // 2)


def receive_frames(radio: Radio, sc: Scenario, modem: OfdmModem, rounds: int, num_bytes: int) -> list[dict]:
    """Receive the whole schedule and report every decoded frame."""
    _, total = schedule(modem, len(sc.nodes), rounds, num_bytes)
    blocks = [radio.receive(min(CHUNK_SAMPLES, total - pos)) for pos in range(0, total, CHUNK_SAMPLES)]
    return [
        {
            "from": f.stream_id,
            "seq": f.seq,
            "crc_ok": bool(f.crc_ok),
            "sha": hashlib.sha256(f.payload).hexdigest() if f.payload is not None else None,
            "snr_db": float(f.snr_db),
            "cfo_hz": float(f.cfo_hz),
            "start": int(f.start),
        }
        for f in modem.demodulate(np.concatenate([b.iq for b in blocks]))
    ]


def main(endpoint: str, scenario_path: str, node_id: str, rounds: int, num_bytes: int) -> None:
    sc = load_scenario(scenario_path)
    modem = OfdmModem(PhyConfig(sample_rate_hz=sc.sample_rate_hz))
    with HubRadio(endpoint, node_id, timeout_s=60) as radio:
        radio.configure(radio_config(sc, node_id))
        send_frames(radio, sc, node_id, modem, rounds, num_bytes)
        frames = receive_frames(radio, sc, modem, rounds, num_bytes)
    print(json.dumps({"node": node_id, "frames": frames}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
