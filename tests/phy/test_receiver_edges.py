"""Receiver edge cases met on the in-process phy medium."""

import numpy as np

from testbed.phy import OfdmModem, PhyConfig


def test_a_burst_far_below_float32_range_is_dropped_not_raised() -> None:
    """A frame scaled to 1e-25 (what a detection in the medium's near-silence looks like) used to overflow the
    equalizer's noise to inf and stop the whole run with a PhyError; now it is simply not delivered."""
    modem = OfdmModem(PhyConfig())
    burst = modem.modulate(bytes(100), "qpsk-1/2")
    quiet = np.zeros(200, np.complex64)
    frames = modem.demodulate((np.concatenate([quiet, burst, quiet]) * 1e-25).astype(np.complex64))
    assert all(f.payload is None or not f.crc_ok for f in frames)
