"""A node's radio pump on the Pluto backend against a virtual Pluto: it keeps its clock through an overflow
and, when the board vanishes, stops with a Failed event naming the fault instead of hanging the daemon."""

from __future__ import annotations

import time

import pytest

from testbed.node.actions import Failed
from testbed.node.config import UeConfig, parse_config
from testbed.node.pump import RadioPump
from testbed.node.runtime import radio_factory

pytest.importorskip("adi")


def test_pump_rides_out_an_overflow_and_reports_a_vanished_board(plutos):
    text = (f'[ue]\nue_id = "ue-1"\nnode_id = 1\n[radio]\nkind = "pluto"\nuri = "{plutos.uris["ue-1"]}"\n'
            "rx_gain_db = 30.0\n[air]\nsample_rate_hz = 2.5e6\nrealtime_factor = 0.0\n")  # fmt: skip
    cfg = parse_config(text.encode(), UeConfig)
    pump = RadioPump(radio_factory(cfg.radio, cfg.air), cfg.air, stream_id=1)
    pump.start()
    try:
        assert pump.wait_ready(60.0)
        plutos.medium.inject_overflow("ue-1", 50_000)
        before = pump.cursor
        deadline = time.monotonic() + 30
        while pump.cursor < before + 10 * cfg.air.window_samples and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pump.cursor >= before + 10 * cfg.air.window_samples  # still streaming after the loss
        assert not any(isinstance(e, Failed) for e in pump.events())
        plutos.plutos["ue-1"].vanish()
        deadline = time.monotonic() + 30
        failed: list[Failed] = []
        while not failed and time.monotonic() < deadline:
            failed = [e for e in pump.events() if isinstance(e, Failed)]
            time.sleep(0.05)
        assert failed and ("connection dropped" in failed[0].reason or "board is gone" in failed[0].reason)
    finally:
        assert pump.stop(10.0)  # the thread ends: the daemon's loop is free to report and exit
