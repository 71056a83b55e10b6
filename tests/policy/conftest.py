"""Fixtures of the policy tests."""

from pathlib import Path

import pytest
from policy_helpers import PI4_STEPS_KHZ, make_cpufreq_tree


@pytest.fixture
def pi4_tree(tmp_path: Path) -> Path:
    """A Raspberry Pi 4's cpufreq tree (two CPUs, 600-1500 MHz in 100 MHz steps, schedutil)."""
    return make_cpufreq_tree(tmp_path / "cpu", PI4_STEPS_KHZ)
