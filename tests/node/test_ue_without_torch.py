"""A UE agent in the centralized modes runs without torch: hub + BS (with torch) + two UE daemons in which
importing torch fails (the blocker of tests/test_packaging.py) complete rounds in centralized-decoder and
centralized-full mode; each UE records what it computed, and the torch UE (LearningUe) given the same
broadcasts computes the same symbols (float32 tolerance) and the same raw blocks. Every process is killed in
``finally``. Fails on the old code: the UE daemon imported torch at start-up (ue_core -> first_info -> codec)."""

from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import msgspec
import numpy as np

from testbed.control.protocol import Assign
from testbed.learning.spec import TrainingSpec
from testbed.link.messages import SlotGrant
from testbed.mode import Mode
from testbed.node.step import UeLink
from testbed.node.training import LearningUe
from tests.node.node_helpers import NodeRig
from tests.node.test_training import ONE_THREAD, TRAINING

# Torch cannot be imported; every training step's inputs and outputs are appended to <ue>.steps.
WITHOUT_TORCH = """
import importlib.abc, pickle, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
from testbed.node import encoder_ue
_step = encoder_ue.EncoderUe.upload_bytes
def upload_bytes(self, round_no, model, assign, local_steps=None, link=encoder_ue.UeLink()):
    data = _step(self, round_no, model, assign, local_steps, link)
    with open(f"{self.ue_id}.steps", "ab") as f:
        pickle.dump((round_no, model, assign.mode.value, local_steps, link, data, list(self.last_analog)), f)
    return data
encoder_ue.EncoderUe.upload_bytes = upload_bytes
"""


def _steps(path: Path) -> list[tuple]:
    out = []
    with path.open("rb") as f:
        while True:
            try:
                out.append(pickle.load(f))
            except EOFError:
                return out


def test_centralized_ues_run_without_torch_and_send_what_torch_would(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=2, mcs="qpsk-1/2")
    try:
        rig.start_hub()
        assign = '[assign]\nmodes = { "ue-1" = "centralized_decoder", "ue-2" = "centralized_full" }\n'
        bs = rig.start_bs(env=ONE_THREAD, sections=TRAINING + assign, num_rounds=2, min_ues=2, deadline_s=60.0,
                          round_gap_s=0.1)  # fmt: skip
        ues = [rig.start_ue(i, sections=TRAINING, env=ONE_THREAD, shard=i - 1, preamble=WITHOUT_TORCH) for i in (1, 2)]
        assert bs.wait_exit(120) == 0, bs.tail()
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == [1, 2]
        for r in rounds:
            assert r["outcome"] == "complete" and r["done"] == ["ue-1", "ue-2"], r
            assert r["training"]["refused"] == {} and r["training"]["modes"] == {
                "ue-1": "centralized_decoder", "ue-2": "centralized_full"}  # fmt: skip
        for ue in ues:
            sent = ue.wait_event(lambda e: e.get("event") == "capability_sent", 10, "capability_sent")
            assert sent["num_local_samples"] > 600
            assert ue.stop() == 0, ue.tail()
    finally:
        rig.close()
    spec = msgspec.convert(tomllib.loads(TRAINING)["training"], TrainingSpec)  # what the UEs loaded
    for i in (1, 2):
        steps = _steps(tmp_path / f"ue-{i}.steps")
        assert [s[0] for s in steps] == [1, 2] and {s[2] for s in steps} == {rounds[0]["modes"][f"ue-{i}"]}
        torch_ue = LearningUe.for_shard(spec, f"ue-{i}", i - 1)
        for round_no, model, mode, local_steps, link, data, frames in steps:
            assert isinstance(link, UeLink)
            grant = Assign(Mode(mode), 0, 0.0, 1.0, 1.5e9, "qpsk-1/2", SlotGrant(1, 0, 1000))
            expected = torch_ue.upload_bytes(round_no, model, grant, local_steps, link)
            if Mode(mode) is Mode.CENTRALIZED_FULL:
                assert data == expected and len(data) > 24 * 64
                continue
            assert len(frames) == len(torch_ue.last_analog) > 0
            for got, want in zip(frames, torch_ue.last_analog, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)
