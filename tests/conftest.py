"""Shared fixtures: every test that needs randomness takes a seeded generator from here."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed, so every test run is repeatable."""
    return np.random.default_rng(20261127)
