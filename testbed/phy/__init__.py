"""OFDM physical layer: arrays in, arrays out (see docs/phy.md).

``OfdmModem(PhyConfig(...))`` modulates data and analog bursts and finds every burst in a buffer.

The names below load on first use (PEP 562), not with the package: importing a light module such as
``testbed.phy.mcs`` or ``testbed.phy.layout`` runs this file first, and the control plane, which needs
only the MCS table, must not pay for the receiver, numba and scipy (docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.phy.mcs import MCS_TABLE
    from testbed.phy.modem import OfdmModem
    from testbed.phy.numerology import PhyConfig
    from testbed.phy.receiver import RxFrame, RxStats

_HOMES = {
    "MCS_TABLE": "testbed.phy.mcs",
    "OfdmModem": "testbed.phy.modem",
    "PhyConfig": "testbed.phy.numerology",
    "RxFrame": "testbed.phy.receiver",
    "RxStats": "testbed.phy.receiver",
}

__all__ = ["MCS_TABLE", "OfdmModem", "PhyConfig", "RxFrame", "RxStats"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
