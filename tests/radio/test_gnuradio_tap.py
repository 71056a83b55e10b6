"""The flowgraph of docs/radio.md, run by a real GNU Radio, reads the hub's tap bit for bit.

GNU Radio cannot share the testbed's numpy 2 environment, so it runs under the system interpreter
(Debian's ``gnuradio`` package); without it the test is skipped, naming the package to install.
"""

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import RADIO, make_scenario

from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_outputs import HubOutputs
from testbed.radio.hub_server import HubServer

SYSTEM_PYTHON = "/usr/bin/python3"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "radio.md"
BLOCK = 16384


def _has_gnuradio() -> bool:
    try:
        probe = [SYSTEM_PYTHON, "-c", "from gnuradio import zeromq"]
        return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _has_gnuradio(), reason="GNU Radio absent (apt-get install gnuradio)")


def _flowgraph() -> str:
    """The Python flowgraph as docs/radio.md prints it."""
    text = DOCS.read_text()
    start = text.index("# tap_view.py")
    return text[start : text.index("```", start)]


def test_the_documented_flowgraph_reads_the_tap(tmp_path):
    hub = HubServer(make_scenario(wait_for_all_nodes=False), outputs=HubOutputs(taps={"ue1": "tcp://127.0.0.1:*"}))
    stop = threading.Event()
    thread = threading.Thread(target=hub.serve, args=(stop, 0.02), daemon=True)
    thread.start()
    out = tmp_path / "ue1.cf32"
    script = _flowgraph().replace("tb = TapView()", f"tb = TapView({hub.outputs.endpoints['ue1']!r}, {str(out)!r})")
    gr = subprocess.Popen([SYSTEM_PYTHON, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    blocks = []
    try:
        assert gr.stdout.readline().startswith("tapping")
        with HubRadio(hub.endpoint, "ue1", timeout_s=20) as ue:
            ue.configure(RADIO.with_(rx_gain_db=20.0))
            deadline = time.monotonic() + 60
            while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
                blocks.append(ue.receive(BLOCK).iq)  # until GNU Radio's subscription is through
            blocks += [ue.receive(BLOCK).iq for _ in range(20)]
        gr.communicate("\n", timeout=60)
    finally:
        if gr.poll() is None:
            gr.kill()
            gr.wait(timeout=10)
        stop.set()
        thread.join(timeout=5)
        hub.close()
    got = np.fromfile(out, dtype=np.complex64)
    assert got.size >= 10 * BLOCK
    first = next(k for k, b in enumerate(blocks) if np.array_equal(b, got[:BLOCK]))
    np.testing.assert_array_equal(got, np.concatenate(blocks[first:])[: got.size])
