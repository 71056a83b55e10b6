"""OFDM physical layer: arrays in, arrays out (see docs/phy.md).

``OfdmModem(PhyConfig(...))`` modulates data and analog bursts and finds every burst in a buffer.
"""

from testbed.phy.mcs import MCS_TABLE
from testbed.phy.modem import OfdmModem
from testbed.phy.numerology import PhyConfig
from testbed.phy.receiver import RxFrame, RxStats

__all__ = ["MCS_TABLE", "OfdmModem", "PhyConfig", "RxFrame", "RxStats"]
