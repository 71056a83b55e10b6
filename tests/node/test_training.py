"""The real training inside the daemons: hub + BS + 2 UEs as processes run rounds of the method on the 8x8
digits with a tiny codec (model, update and raw samples over the radio link), and the first information
(capability report, ASSIGN's mode and CPU frequency) goes over the control plane. Every process is killed
in ``finally``."""

from __future__ import annotations

import math
from pathlib import Path

from tests.node.node_helpers import NodeRig

TRAINING = """
[training]
dataset = "digits"
seed = 4
num_shards = 2
num_symbols = 4
encoder_channels = [4, 8]
decoder_hidden = 16
local_steps = 2
batch_size = 16
server_lr = 0.5
raw_block_samples = 24
"""
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # four torch processes on a shared 2-core machine


def test_daemons_train_the_codec_over_the_air(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    try:
        rig.start_hub()
        assign = '[assign]\nmodes = { "ue-1" = "distributed", "ue-2" = "centralized_full" }\n'
        bs = rig.start_bs(env=ONE_THREAD, sections=TRAINING + assign, num_rounds=3, min_ues=2, deadline_s=60.0,
                          round_gap_s=0.1)  # fmt: skip
        ues = [rig.start_ue(i, sections=TRAINING, env=ONE_THREAD, shard=i - 1) for i in (1, 2)]
        assert bs.wait_exit(120) == 0, bs.tail()
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == [1, 2, 3]
        for r in rounds:
            assert r["outcome"] == "complete" and r["done"] == ["ue-1", "ue-2"], r
            t = r["training"]
            assert t["refused"] == {} and t["late"] == [] and t["model_finite"], t
            assert 0.0 <= t["accuracy"] <= 1.0 and math.isfinite(t["loss"])
            # one vocabulary: the BS's round record and the learning report name the modes alike
            assert t["modes"] == r["modes"] == {"ue-1": "distributed", "ue-2": "centralized_full"}
            # a raw block of 24 8x8 images plus labels, and a whole-model update (bytes over the air)
            assert 24 * 65 < r["uploads"]["ue-2"]["bytes"] < 24 * 65 + 200
            assert r["uploads"]["ue-1"]["bytes"] > r["model_bytes"] - 100
        assert len({r["model_sha256"] for r in rounds}) == 3  # the model changed every round
        assert rounds[-1]["training"]["loss"] < rounds[0]["training"]["loss"]
        for i, ue in enumerate(ues, start=1):  # each UE trained in the mode its ASSIGN named
            assigned = ue.wait_event(lambda e: e.get("event") == "assigned", 10, "assigned")
            assert assigned["mode"] == rounds[0]["modes"][f"ue-{i}"]
            assert assigned["cpu_freq_hz"] == 1.5e9  # [assign] cpu_freq_hz, applied to the simulated Pi 4
            done = ue.wait_event(lambda e: e.get("event") == "uplink_done", 10, "uplink_done")
            assert done["energy_spent_j"] > 0 and done["energy_budget_j"] == 1000.0
            sent = ue.wait_event(lambda e: e.get("event") == "capability_sent", 10, "capability_sent")
            assert sent["num_local_samples"] > 600  # its shard: half of 80% of 1,797 digits
            capability = bs.wait_event(lambda e, u=f"ue-{i}": e.get("event") == "capability" and e["ue"] == u, 10,
                                       "capability")  # fmt: skip
            assert capability["num_local_samples"] == sent["num_local_samples"]
        for ue in ues:
            assert ue.stop() == 0
    finally:
        rig.close()


def test_split_learning_reaches_the_daemons(tmp_path: Path) -> None:
    """[training] split_gradient = true on the daemons: in round 2 the broadcast carries the symbol UE's
    gradient section (M x k complex64) and its upload the encoder gradient (phi as float32), nothing is refused."""
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    split = TRAINING + "split_gradient = true\n"
    try:
        rig.start_hub()
        assign = '[assign]\nmodes = { "ue-1" = "distributed", "ue-2" = "centralized_decoder" }\n'
        bs = rig.start_bs(env=ONE_THREAD, sections=split + assign, num_rounds=2, min_ues=2, deadline_s=60.0,
                          round_gap_s=0.1)  # fmt: skip
        ues = [rig.start_ue(i, sections=split, env=ONE_THREAD, shard=i - 1) for i in (1, 2)]
        assert bs.wait_exit(120) == 0, bs.tail()
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == [1, 2]
        for r in rounds:
            assert r["outcome"] == "complete" and r["training"]["refused"] == {}, r
        symbols = 2 * 16 * 4 * 8  # local_steps x batch_size rows of num_symbols complex64
        phi = 4 * (4 * 25 + 4 + 8 * 4 * 9 + 8 + 8 * 2 * 2 * 8 + 8)  # the encoder's parameters as float32
        first, later = rounds[0], rounds[1:]
        for r in later:
            assert symbols < r["model_bytes"] - first["model_bytes"] < symbols + 100
            grown = r["uploads"]["ue-2"]["bytes"] - first["uploads"]["ue-2"]["bytes"]
            assert phi < grown < phi + 400, grown
        for ue in ues:
            assert ue.stop() == 0
    finally:
        rig.close()
