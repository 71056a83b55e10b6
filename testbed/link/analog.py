"""Analog frames on the one link engine: semantic symbols carried as complex values on the data subcarriers
(testbed/phy ``modulate_symbols``), placed like data frames, sent once (no CRC, no ARQ: a lost frame is lost).

A job or ``TxFrame`` is analog when its MCS is ``ANALOG_MCS``; its payload is then a ``(n,) complex64`` array
instead of bytes, and every length rule goes through :func:`frame_num_samples`. An upload's values are cut
into frames of the air's ``analog_frame_symbols`` (the airtime model's figure, testbed/link/airtime.py), so
the engine, the policy and the daemons charge and send the same bursts. The PHY header's 16-bit seq
says which analog frame of which upload a burst is: the low ``INDEX_BITS`` the frame's index in the upload,
the rest the round number modulo 2**``ROUND_BITS``, so a late frame of the last round is never taken for one
of this round.
"""

from __future__ import annotations

import numpy as np

from testbed.errors import LinkError
from testbed.phy.layout import analog_burst_num_samples, burst_num_samples
from testbed.phy.numerology import PhyConfig

ANALOG_MCS = "analog"  # the receiver's name for the frame type (RxFrame.mcs), used as the job's MCS
HEADER_MCS = "bpsk-1/2"  # the PHY header's code and modulation (testbed/phy/layout.py): an analog frame's
HEADER_BYTES = 8  # only protected part, 64 information bits; the model medium loses it at that PER
INDEX_BITS = 10  # analog frames per upload: up to 1024
ROUND_BITS = 16 - INDEX_BITS
MAX_FRAMES = 1 << INDEX_BITS


def frame_num_samples(phy: PhyConfig, size: int, mcs: str) -> int:
    """Exact burst length of a frame: ``size`` payload bytes at a coded ``mcs``, or ``size`` complex values
    when ``mcs`` is ``ANALOG_MCS`` (testbed/phy/layout.py)."""
    if mcs == ANALOG_MCS:
        return analog_burst_num_samples(phy, size)
    return burst_num_samples(phy, size, mcs)


def analog_seq(round_no: int, index: int) -> int:
    """PHY header seq of analog frame ``index`` of an upload in round ``round_no``."""
    if not 0 <= index < MAX_FRAMES:
        raise LinkError(f"analog frame index {index} outside 0..{MAX_FRAMES - 1}; send fewer, longer frames")
    return ((round_no % (1 << ROUND_BITS)) << INDEX_BITS) | index


def analog_index(seq: int, round_no: int) -> int | None:
    """The frame index a received analog seq names, or None if it belongs to another round."""
    if seq >> INDEX_BITS != round_no % (1 << ROUND_BITS):
        return None
    return seq & (MAX_FRAMES - 1)


def analog_snr_db(subcarrier_snr: np.ndarray) -> float:
    """Symbol SNR of analog values on a channel of ``(n_data,)`` linear per-subcarrier SNRs after zero-forcing
    equalization: value k sees noise 1/snr_k, so the mean squared error is mean(1/snr_k) and the effective
    SNR its inverse (the harmonic mean; EESM's beta is fitted to coded frames, not to uncoded analog values)."""
    snr = np.asarray(subcarrier_snr, np.float64)
    if snr.ndim != 1 or not snr.size or not np.all(snr > 0):
        raise LinkError(f"per-subcarrier SNRs must be a non-empty 1-D array of positive values, got {snr.shape}")
    return float(-10.0 * np.log10(np.mean(1.0 / snr)))
