"""Semantic symbols over the air in the daemons: hub + BS + 2 UEs as processes, ue-2 in centralized_decoder
mode sends its encoder outputs as analog OFDM frames through the hub; the BS decoder trains on exactly what
its receiver equalised (labels intact, error within 1 dB of the receiver's noise estimate), and the round
record counts the frames. Each process dumps what it sent / decoded from inside (a preamble wraps the call).
Every process is killed in ``finally``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tests.node.node_helpers import NodeRig
from tests.node.test_training import ONE_THREAD, TRAINING

# Run inside a process before the CLI: save each call's tensors to symbols-<who>-<k>.npz in its directory.
UE_DUMP = """
import itertools, numpy as np
from testbed.learning.modes import LocalUe
_symbols, _count = LocalUe.symbols, itertools.count()
def symbols(self, model, work, idx=None):
    out = _symbols(self, model, work, idx)
    np.savez(f"symbols-ue-{next(_count)}.npz", symbols=out.symbols.numpy(), labels=out.labels.numpy())
    return out
LocalUe.symbols = symbols
"""
BS_DUMP = """
import itertools, numpy as np
from testbed.learning import wire
_decode, _count = wire.decode_symbols, itertools.count()
def decode_symbols(*args, **kwargs):
    up = _decode(*args, **kwargs)
    np.savez(f"symbols-bs-{next(_count)}.npz", symbols=up.received.numpy(), labels=up.labels.numpy(),
             noise_var=up.noise_var)
    return up
wire.decode_symbols = decode_symbols
"""
ROUNDS = 2


def test_symbols_cross_the_hub_as_analog_frames_and_the_decoder_trains_on_them(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    try:
        rig.start_hub()
        assign = '[assign]\nmodes = { "ue-1" = "distributed", "ue-2" = "centralized_decoder" }\n'
        bs = rig.start_bs(env=ONE_THREAD, sections=TRAINING + assign, preamble=BS_DUMP, num_rounds=ROUNDS, min_ues=2,
                          deadline_s=60.0, round_gap_s=0.1)  # fmt: skip
        ues = [rig.start_ue(1, sections=TRAINING, env=ONE_THREAD, shard=0),
               rig.start_ue(2, sections=TRAINING, env=ONE_THREAD, shard=1, preamble=UE_DUMP)]  # fmt: skip
        assert bs.wait_exit(150) == 0, bs.tail()
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == list(range(1, ROUNDS + 1))
        for r in rounds:
            assert r["outcome"] == "complete" and r["training"]["refused"] == {}, r
            assert set(r["analog"]) == {"ue-2"}, r["analog"]  # the distributed UE sends none
            a = r["analog"]["ue-2"]
            assert a["frames_sent"] == a["frames_received"] == 1  # 32 images x 4 symbols: one frame
            assert math.isfinite(a["snr_db"]) and abs(a["snr_db"] - r["uplink_snr_db"]["ue-2"]) < 1.5, r
            assert r["uploads"]["ue-2"]["bytes"] < 200  # digital: the labels and the frame index only
        errors, estimates = [], []
        for k in range(ROUNDS):
            sent, got = np.load(tmp_path / f"symbols-ue-{k}.npz"), np.load(tmp_path / f"symbols-bs-{k}.npz")
            assert np.array_equal(sent["labels"], got["labels"]) and got["symbols"].shape == sent["symbols"].shape
            err = np.mean(np.abs(got["symbols"] - sent["symbols"]) ** 2) / np.mean(np.abs(sent["symbols"]) ** 2)
            # one frame of 128 values: within 2 dB; the run's, pooled: within 1 dB
            assert abs(10 * np.log10(err) - 10 * np.log10(float(got["noise_var"]))) < 2.0, (err, got["noise_var"])
            errors.append(float(err))
            estimates.append(float(got["noise_var"]))
        assert abs(10 * np.log10(sum(errors) / sum(estimates))) < 1.0, (errors, estimates)
        frames = ues[1].wait_event(lambda e: e.get("event") == "analog_frames", 10, "analog_frames")
        assert frames["frames"] == 1 and frames["symbols"] == 32 * 4
        received = ues[1].wait_event(lambda e: e.get("event") == "model_received", 10, "model_received")
        assert received["link_snr_db"] is not None  # its local training ran at its measured link SNR
        for ue in ues:
            assert ue.stop() == 0
    finally:
        rig.close()
