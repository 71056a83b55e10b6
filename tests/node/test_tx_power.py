"""ASSIGN's TX power on the radio, multi-process over the hub: hub, BS and one UE as processes, the BS telling
the UE 0 dBm in round 1 and 10 dB less in round 2. The BS hears the UE's frames 10 +- 1 dB lower, and the
UE's radio energy (at the power its radio applied, as UPLINK_DONE reports it) drops tenfold.

On the old code ASSIGN's power was only logged: the UE is heard at the same SNR in both rounds, and the
records carry no applied power (the test fails on ``ue_tx_power_dbm``)."""

from __future__ import annotations

import math
from pathlib import Path

from tests.node.node_helpers import NodeRig

TRAINING = """
[training]
dataset = "digits"
num_symbols = 8
encoder_channels = [8, 16]
decoder_hidden = 64
local_steps = 2
batch_size = 16
"""
STEP_DB = -10.0
# Source run in the BS process: ASSIGN with [assign]'s orders, the TX power 0 dBm in round 1 and STEP_DB after.
PATCH = f"""
import dataclasses
from testbed.node.assigners import FixedAssigner
_rounds, _orders = [], FixedAssigner.orders
def orders(self, views, chosen):
    _rounds.append(1)
    power = 0.0 if len(_rounds) == 1 else {STEP_DB}
    return {{ue: dataclasses.replace(o, tx_power_dbm=power) for ue, o in _orders(self, views, chosen).items()}}
FixedAssigner.orders = orders
"""


def test_a_ue_told_10_db_less_power_is_heard_10_db_lower_and_spends_a_tenth_on_the_radio(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=1, mcs="qpsk-1/2")  # one MCS: the same frames take the same airtime
    try:
        rig.start_hub()
        bs = rig.start_bs(sections=TRAINING, preamble=PATCH, num_rounds=2, deadline_s=60.0, round_gap_s=0.1)
        ue = rig.start_ue(1, sections=TRAINING.replace("[training]", "[training]\nnum_shards = 1"))
        assert bs.wait_exit(180) == 0, bs.tail()
        first, second = rig.rounds()
        for r in (first, second):
            assert r["outcome"] == "complete" and r["ue_work"] == {"ue-1": "full"}, r
        assert (first["ue_tx_power_dbm"], second["ue_tx_power_dbm"]) == ({"ue-1": 0.0}, {"ue-1": STEP_DB})
        # the tracker's window (16 frames) holds only this round's: this codec's update is 33 frames
        heard_db = second["uplink_snr_db"]["ue-1"] - first["uplink_snr_db"]["ue-1"]
        assert abs(heard_db - STEP_DB) <= 1.0, (first["uplink_snr_db"], second["uplink_snr_db"])
        radio_db = 10 * math.log10(second["ue_radio_energy_j"]["ue-1"] / first["ue_radio_energy_j"]["ue-1"])
        assert abs(radio_db - STEP_DB) <= 0.5, (first["ue_radio_energy_j"], second["ue_radio_energy_j"])
        applied = [e for e in ue.events() if e.get("event") == "tx_power_set"]
        assert [(e["requested_dbm"], e["applied_dbm"]) for e in applied] == [(0.0, 0.0), (STEP_DB, STEP_DB)]
        assert ue.stop() == 0
    finally:
        rig.close()
