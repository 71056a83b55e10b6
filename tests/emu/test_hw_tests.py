"""The hardware tests (hw_tests/, `pytest hw_tests --uri ...`) pass against a virtual Pluto: the lab's own
acceptance checks run in CI, the cabled-RF ones through the emulator's TX-to-RX cable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from emu_helpers import make_scenario

from testbed import emu

pytest.importorskip("adi")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_hw_tests_pass_against_a_virtual_pluto_with_its_tx_cabled_to_rx():
    with emu.start(make_scenario(), rf_cable_db=30.0) as running:  # the lab guide's >= 30 dB attenuator
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hw_tests", "--uri", running.uris["bs"],
             "--rf-loopback"],
            cwd=ROOT, capture_output=True, text=True, timeout=900, env=os.environ, check=False,
        )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "10 passed" in out.stdout, out.stdout[-2000:]
