"""Tiny fixtures for learning tests: 8x8 digits, a small codec, UEs and a runner whose UEs are in process."""

import numpy as np
import pytest
import torch

from testbed.learning.assignment import UeProfile
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import CodecConfig
from testbed.learning.data import ImageDataset, load_dataset, train_test_split
from testbed.learning.modes import LocalTraining, LocalUe
from testbed.learning.partition import iid
from testbed.learning.rounds import RoundConfig, RoundReport, RoundRunner
from testbed.mode import Mode

TINY = CodecConfig(image_size_px=8, num_symbols=8, decoder_hidden=32)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine run fastest (and most predictably) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_split() -> tuple[ImageDataset, ImageDataset]:
    return train_test_split(load_dataset("digits"), 0.25, np.random.default_rng(7))


def make_profiles(n: int = 4) -> list[UeProfile]:
    return [
        UeProfile(f"ue{i}", i < n // 2, 6.0 if i < n // 2 else 20.0, 20.0, 1e9, 1.5e9, 1e6, 1e-27) for i in range(n)
    ]


class LocalRunner(RoundRunner):
    """A runner with its UEs in this process: each contribution by a direct ``LocalUe`` call, where the node
    cores carry it as bytes over the link (tests of the learning alone)."""

    def __init__(self, model: SemanticCodec, cfg: RoundConfig, profiles, ues: list[LocalUe], generator) -> None:
        super().__init__(model, cfg, profiles, [len(u.data) for u in ues], generator)
        self.ues = ues

    def run_round(self, assignments, late=()) -> RoundReport:
        plan = self.plan_round(assignments)
        arrived = {}
        for ue, a in zip(self.ues, plan.assignments, strict=True):
            if a.mode is Mode.DISTRIBUTED:
                arrived[ue.name] = ue.distributed(self.model, self.cfg.work)
            elif a.mode is Mode.CENTRALIZED_DECODER:
                arrived[ue.name] = ue.symbols(self.model, self.cfg.work).through(ue.channel(0.0))
            elif a.mode is Mode.CENTRALIZED_FULL and ue.name in plan.raw_requests:
                arrived[ue.name] = ue.raw(*plan.raw_requests[ue.name])
        return self.finish_round(plan, arrived, late=late)


@pytest.fixture
def make_runner():
    """Factory: a LocalRunner over ``n`` UEs (half weak at 6 dB, half strong at 20 dB) on ``train``."""
    return _make_runner


def _make_runner(train: ImageDataset, cfg: RoundConfig | None = None, n: int = 4, seed: int = 3) -> LocalRunner:
    profiles = make_profiles(n)
    parts = iid(train.labels.numpy(), [1.0] * n, np.random.default_rng(seed))
    ues = [
        LocalUe(p.name, train.subset(idx), p.snr_db, torch.Generator().manual_seed(seed * 100 + i))
        for i, (p, idx) in enumerate(zip(profiles, parts, strict=True))
    ]
    cfg = cfg or RoundConfig(work=LocalTraining(steps=2, batch_size=16, lr=0.1))
    model = SemanticCodec(TINY, torch.Generator().manual_seed(seed))
    return LocalRunner(model, cfg, profiles, ues, torch.Generator().manual_seed(seed + 1))
