"""Tiny fixtures for learning tests: 8x8 digits, a small codec, UEs and a runner with a simple airtime."""

import numpy as np
import pytest
import torch

from testbed.learning.assignment import UeProfile
from testbed.learning.clock import Airtime
from testbed.learning.codec import CodecConfig, SemanticCodec
from testbed.learning.data import ImageDataset, load_dataset, train_test_split
from testbed.learning.modes import LocalTraining, LocalUe
from testbed.learning.partition import iid
from testbed.learning.rounds import RoundConfig, RoundRunner
from testbed.link.airtime import Transfer

TINY = CodecConfig(image_size_px=8, num_symbols=8, decoder_hidden=32)


class FlatAirtime:
    """1 Mbit/s everywhere, analog symbols at 1 MS/s, no waiting for slots (elapsed = on air): enough to check
    the clock's bookkeeping."""

    def broadcast(self, payload_bytes: int, worst_snr_db: float, channels=()) -> Transfer:
        return _flat(8e-6 * payload_bytes)

    def upload(self, payload_bytes: int, snr_db: float, analog_symbols: int = 0, gain=None) -> Transfer:
        return _flat(8e-6 * payload_bytes * (2.0 if snr_db < 10 else 1.0) + 1e-6 * analog_symbols)


def _flat(seconds: float) -> Transfer:
    return Transfer(seconds, seconds, 0.0, 0, None)


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


@pytest.fixture
def make_runner():
    """Factory: a RoundRunner over ``n`` UEs (half weak at 6 dB, half strong at 20 dB) on ``train`` (airtime:
    FlatAirtime unless given)."""
    return _make_runner


def _make_runner(
    train: ImageDataset, cfg: RoundConfig | None = None, n: int = 4, seed: int = 3, airtime: Airtime | None = None
) -> RoundRunner:
    profiles = make_profiles(n)
    parts = iid(train.labels.numpy(), [1.0] * n, np.random.default_rng(seed))
    ues = [
        LocalUe(p.name, train.subset(idx), p.snr_db, torch.Generator().manual_seed(seed * 100 + i))
        for i, (p, idx) in enumerate(zip(profiles, parts, strict=True))
    ]
    cfg = cfg or RoundConfig(work=LocalTraining(steps=2, batch_size=16, lr=0.1))
    model = SemanticCodec(TINY, torch.Generator().manual_seed(seed))
    return RoundRunner(
        model, cfg, profiles, ues, [len(u.data) for u in ues], airtime or FlatAirtime(),
        torch.Generator().manual_seed(seed + 1),
    )  # fmt: skip
