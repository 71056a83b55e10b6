"""Fixtures for the virtual-Pluto tests: a running emulator of a small scenario, always closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emu_helpers import make_scenario

from testbed import emu


@pytest.fixture
def plutos() -> Iterator[emu.Emulator]:
    running = emu.start(make_scenario())
    try:
        yield running
    finally:
        running.close()
