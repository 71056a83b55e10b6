"""Radio layer: one Radio interface and its backends (see docs/radio.md). Samples in, samples out.

``from testbed.radio import RadioConfig, LoopbackRadio, HubRadio, PlutoRadio, ...``: backends are imported
on first use, so importing the package loads neither pyadi-iio nor ZeroMQ nor sigmf.
"""

from __future__ import annotations

import importlib
from typing import Any

from testbed.radio.base import Radio, RadioConfig, RxBlock

_LAZY = {
    "Air": "testbed.radio.air",
    "LoopbackRadio": "testbed.radio.loopback",
    "HubRadio": "testbed.radio.hub_client",
    "HubServer": "testbed.radio.hub_server",
    "PlutoRadio": "testbed.radio.pluto",
    "RecordingRadio": "testbed.radio.sigmf_io",
    "SigmfReplayRadio": "testbed.radio.sigmf_io",
    "Scenario": "testbed.radio.scenario",
    "load_scenario": "testbed.radio.scenario",
    "load_profile": "testbed.radio.profiles",
    "load_calibration": "testbed.radio.calibration",
    "configured_snr_db": "testbed.radio.links",
}

__all__ = ["Radio", "RadioConfig", "RxBlock", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'testbed.radio' has no attribute {name!r}")
