"""`testbed emu`: one JSON object with a URI per node, served until SIGTERM; a bad scenario is exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_emu_prints_uris_serves_them_and_stops_on_sigterm():
    adi = pytest.importorskip("adi")
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "emu", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)  # fmt: skip
    try:
        info = json.loads(proc.stdout.readline())
        assert sorted(info["uris"]) == ["bs", "ue-1", "ue-2"]  # firmware_cfg/nodes/scenario.toml
        sdr = adi.Pluto(info["uris"]["ue-2"])
        assert sdr.ctx.attrs["hw_serial"] == "emu-ue-2"
        del sdr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""  # exactly one JSON object on stdout


def test_emu_refuses_a_bad_scenario_with_one_json_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[nodes]]\nid = "bs"\nposition_m = [0.0]\n')
    out = subprocess.run([sys.executable, "-m", "testbed", "emu", str(bad), "--json"], capture_output=True, text=True,
                         env=ENV, cwd=ROOT, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 2
    error = json.loads(out.stdout)
    assert "bad.toml" in error["error"] and "position_m" in error["error"]
