"""Fixtures for the experiment tests: a tiny scenario (8x8 digits, small codec, few rounds)."""

import pytest
import torch

from testbed.experiment.scenario import Scenario, load_scenario

TINY_OVERRIDES = {
    "training": {"dataset": "digits", "num_symbols": 8, "decoder_hidden": 32, "local_steps": 2, "batch_size": 16},
    "run": {"rounds": 3},
}


@pytest.fixture
def tiny_scenario() -> Scenario:
    return load_scenario(overrides=TINY_OVERRIDES)


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core machine run fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
