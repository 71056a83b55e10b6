"""Faults a lab sees, injected into virtual Plutos; the Pluto backend must name each one and recover when the
board is back (testbed/radio/pluto.py's describe_failure)."""

from __future__ import annotations

import numpy as np
import pytest

from testbed.errors import RadioError
from testbed.radio.base import RadioConfig

pluto = pytest.importorskip("testbed.radio.pluto")
pytest.importorskip("adi")
CFG = RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=2.5e6, tx_power_dbm=-10.0, rx_gain_db=30.0)


def open_radio(uri: str) -> pluto.PlutoRadio:
    radio = pluto.PlutoRadio(uri, rx_buffer_samples=4096)
    radio.configure(CFG)
    return radio


def test_rx_overflow_is_flagged_on_the_block_and_counted(plutos):
    with open_radio(plutos.uris["bs"]) as radio:
        radio.receive(4096)
        plutos.medium.inject_overflow("bs", 10_000)
        lossy, clean = radio.receive(4096), radio.receive(4096)
        assert (lossy.overflow, clean.overflow, radio.overflows) == (True, False, 1)
        assert plutos.medium.lost_samples("bs") == 10_000


def test_tx_underflow_is_counted(plutos):
    with open_radio(plutos.uris["bs"]) as radio:
        radio.receive(4096)
        radio.transmit(np.full(1000, 0.1, np.complex64))  # a burst with nothing after it runs the DAC dry
        radio.receive(4096)
        radio.receive(4096)
        assert radio.underflows == 1
        plutos.medium.inject_underflow("bs")
        radio.receive(4096)
        assert radio.underflows == 2


def test_stalled_link_is_reported_as_a_timeout_then_recovers(plutos):
    with open_radio(plutos.uris["bs"]) as radio:
        radio.receive(4096)
        plutos.plutos["bs"].stall(pluto.LIBIIO_TIMEOUT_S + 1.0)
        with pytest.raises(RadioError, match=r"no answer for [\d.]+ s \(libiio's timeout\)"):
            radio.receive(8192)
        assert radio.receive(4096).iq.size == 4096  # the link is back: the same radio streams on


def test_dropped_connection_is_reported_and_the_next_call_reconnects(plutos):
    with open_radio(plutos.uris["bs"]) as radio:
        radio.receive(4096)
        plutos.plutos["bs"].drop_connections()
        with pytest.raises(RadioError, match="connection dropped"):
            radio.receive(8192)
        assert radio.receive(4096).iq.size == 4096


def test_vanished_board_is_reported_as_gone(plutos):
    radio = open_radio(plutos.uris["bs"])
    radio.receive(4096)
    plutos.plutos["bs"].vanish()
    with pytest.raises(RadioError, match="connection dropped|board is gone"):
        radio.receive(8192)
    with pytest.raises(RadioError, match="board is gone"):
        radio.receive(8192)
    radio.close()  # teardown logs what failed and does not raise
    with pytest.raises(RadioError, match="no Pluto reachable"):
        pluto.PlutoRadio(plutos.uris["bs"])


def test_describe_failure_names_each_case():
    import errno

    uri = "ip:192.168.2.1"
    assert "libiio's timeout" in pluto.describe_failure(uri, "receive", OSError(errno.ETIMEDOUT, "t"), 5.0)
    assert "libiio's timeout" in pluto.describe_failure(uri, "receive", BrokenPipeError(errno.EPIPE, "p"), 5.0)
    assert "connection dropped" in pluto.describe_failure(uri, "receive", BrokenPipeError(errno.EPIPE, "p"), 0.1)
    assert "board is gone" in pluto.describe_failure(uri, "receive", ConnectionRefusedError(111, "r"), 0.0)
    assert "ValueError" in pluto.describe_failure(uri, "transmit", ValueError("x"), 0.0)


def test_realtime_reader_later_than_its_kernel_buffers_overflows():
    import time

    from emu_helpers import make_scenario

    from testbed import emu

    with emu.start(make_scenario(), realtime=True) as running:
        radio = pluto.PlutoRadio(running.uris["bs"], rx_buffer_samples=65536, kernel_buffers=4)
        with radio:
            radio.configure(CFG)
            radio.receive(65536)
            before = radio.overflows
            time.sleep(0.5)  # 1.25 Msamples at 2.5 MS/s: far more than 4 kernel buffers of 65536
            late = radio.receive(65536)
            assert late.overflow and radio.overflows == before + 1
            assert running.medium.lost_samples("bs") > 900_000
