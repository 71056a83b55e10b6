"""The control plane imports light: a UE agent or a BS shell that only talks ZeroMQ does not load the modem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import testbed

HEAVY = ("numba", "torch", "testbed.phy.receiver", "testbed.phy.modem")
ROOT = Path(testbed.__file__).resolve().parent.parent  # the checkout under test, not another install


def _loaded_after(statement: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``names`` a fresh interpreter has in sys.modules after ``statement``."""
    probe = f"import json, sys\n{statement}\nprint(json.dumps([m for m in {names!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module", ["testbed.control", "testbed.control.protocol", "testbed.control.server", "testbed.control.client"]
)
def test_control_plane_loads_no_numerics(module):
    assert _loaded_after(f"import {module}") == []


def test_the_phy_names_still_load_on_first_use():
    assert _loaded_after("from testbed.phy import OfdmModem") != []
    assert _loaded_after("import testbed.phy.mcs") == []


@pytest.mark.parametrize("module", ["testbed.node.bs_core", "testbed.node.ue_core", "testbed.node.actions"])
def test_the_node_cores_load_no_modem(module):
    """A core is protocol and round logic: the radio pump (and with it the modem and numba) is the shell's."""
    loaded = _loaded_after(f"import {module}")
    assert not {"numba", "testbed.phy.receiver", "testbed.phy.modem"} & set(loaded), loaded


UE_MODULES = ["testbed.cli.node", "testbed.node.ue", "testbed.node.encoder_ue", "testbed.node.pump"]


@pytest.mark.parametrize("module", UE_MODULES)
def test_the_ue_daemon_loads_neither_torch_nor_what_its_radio_path_does_not_use(module):
    """A UE in a centralized mode runs without torch (node/encoder_ue.py); its radio path needs the modem, not the
    channel models (scipy.optimize, sparse, spatial: 34 MB) nor the BS's ZAP thread (asyncio). On the old code
    testbed.node.ue loaded all three."""
    unused = ("torch", "testbed.channel", "scipy.optimize", "zmq.auth.thread", "asyncio")
    assert _loaded_after(f"import {module}", unused) == []
