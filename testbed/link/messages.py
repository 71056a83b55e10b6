"""Control information the link layer needs, as bounded msgspec Structs the control plane can carry.

- ``Nack``: which frames of an object a receiver still misses (object id, frame count, bitmap bytes).
- ``SlotGrant`` / ``SlotSchedule``: who may transmit when, in samples of the medium's clock.
- ``ChannelReport``: what a receiver measured on one link (SNR, gain, CFO, per-subcarrier channel).

Size bounds are declared with ``msgspec.Meta`` so a decoder refuses oversized input; in-process code builds
them through the helpers here, which check the same bounds and raise LinkError.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
import numpy as np

from testbed.errors import LinkError
from testbed.link.segment import MAX_FRAMES, MAX_NODE_ID

MAX_BITMAP_BYTES = MAX_FRAMES // 8
MAX_SLOTS = 256
MAX_SUBCARRIERS = 1024  # fft_size bound for the channel vector a report may carry

NodeId = Annotated[int, msgspec.Meta(ge=0, le=MAX_NODE_ID)]
Samples = Annotated[int, msgspec.Meta(ge=0, lt=1 << 62)]


class Nack(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Frames of ``object_id`` the receiver misses: bit i of ``missing`` (LSB first in each byte) set means
    frame i is missing. ``frame_count == 0`` means the receiver heard no frame of the object (all missing)."""

    object_id: Annotated[int, msgspec.Meta(ge=0, lt=1 << 32)]
    frame_count: Annotated[int, msgspec.Meta(ge=0, le=MAX_FRAMES)]
    missing: Annotated[bytes, msgspec.Meta(max_length=MAX_BITMAP_BYTES)]


def make_nack(object_id: int, missing_mask: np.ndarray) -> Nack:
    """Build a NACK from a (count,) bool mask (True = missing); an empty mask means nothing heard yet."""
    mask = np.asarray(missing_mask, dtype=bool)
    if mask.ndim != 1 or mask.size > MAX_FRAMES:
        raise LinkError(f"missing mask must be (count,) bool with count <= {MAX_FRAMES}, got shape {mask.shape}")
    return Nack(object_id, int(mask.size), np.packbits(mask, bitorder="little").tobytes())


def nack_missing(nack: Nack, count: int) -> np.ndarray:
    """Sorted (k,) int64 frame numbers the NACK asks for, checked against the sender's ``count``."""
    if nack.frame_count == 0:
        return np.arange(count, dtype=np.int64)
    if nack.frame_count != count or len(nack.missing) != math.ceil(count / 8):
        raise LinkError(
            f"NACK for object {nack.object_id} says {nack.frame_count} frames with a {len(nack.missing)}-byte "
            f"bitmap; the object has {count} frames ({math.ceil(count / 8)} bytes). Ignore it or resend all."
        )
    bits = np.unpackbits(np.frombuffer(nack.missing, dtype=np.uint8), bitorder="little", count=count)
    return np.flatnonzero(bits).astype(np.int64)


class SlotGrant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Node ``node_id`` may transmit in samples [start_sample, start_sample + length_samples) of the window."""

    node_id: NodeId
    start_sample: Samples
    length_samples: Samples

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.length_samples


class SlotSchedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The TDMA plan of one cycle: slots in time order, none overlapping (``tdma.make_schedule`` builds it)."""

    window_samples: Samples
    slots: Annotated[list[SlotGrant], msgspec.Meta(max_length=MAX_SLOTS)]

    def grant_for(self, node_id: int) -> SlotGrant | None:
        return next((s for s in self.slots if s.node_id == node_id), None)


class ChannelReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What ``rx_node`` measured from ``tx_node`` over its last ``num_frames`` frames: the one record of a link's
    quality (the control plane's CHANNEL_REPORT carries it, the policy's link budget reads it).

    snr_db : Es/N0 per subcarrier, dB of the mean linear SNR.
    mean_gain_db : mean |H|^2 over the used subcarriers, dB (None without channel estimates).
    cfo_hz : mean carrier frequency offset.
    frame_success : fraction of those frames whose payload passed the CRC.
    channel_re / channel_im : the last frame's per-used-subcarrier channel coefficients (ascending logical
    index), or empty when none was measured.
    tx_power_dbm : the sender's TX power while those frames were sent, when known (the BS knows the power it
        ordered a UE to use); the link budget needs it to move the SNR with the power dB for dB.
    """

    tx_node: NodeId
    rx_node: NodeId
    num_frames: Annotated[int, msgspec.Meta(ge=0)]
    snr_db: float
    mean_gain_db: float | None
    cfo_hz: float
    frame_success: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    channel_re: Annotated[list[float], msgspec.Meta(max_length=MAX_SUBCARRIERS)] = []
    channel_im: Annotated[list[float], msgspec.Meta(max_length=MAX_SUBCARRIERS)] = []
    tx_power_dbm: float | None = None

    @classmethod
    def assumed(
        cls, snr_db: float, tx_power_dbm: float, *, tx_node: int = 1, rx_node: int = 0,
        mean_gain_db: float | None = None,
    ) -> ChannelReport:  # fmt: skip
        """A link nobody has measured yet (``num_frames`` 0): the SNR a scenario or config states, at a power."""
        return cls(tx_node, rx_node, 0, snr_db, mean_gain_db, 0.0, 1.0, tx_power_dbm=tx_power_dbm)

    def snr_db_at(self, tx_power_dbm: float) -> float:
        """SNR if the sender transmitted at ``tx_power_dbm`` (path loss and noise do not depend on it)."""
        return self.snr_db + (tx_power_dbm - self._reference_power_dbm())

    def power_for_snr_dbm(self, snr_db: float) -> float:
        """TX power at which the SNR reaches ``snr_db``."""
        return self._reference_power_dbm() + (snr_db - self.snr_db)

    def _reference_power_dbm(self) -> float:
        if self.tx_power_dbm is None:
            raise LinkError(
                f"channel report {self.tx_node} -> {self.rx_node} has no tx_power_dbm: its SNR cannot move with power"
            )
        return self.tx_power_dbm

    def channel(self) -> np.ndarray:
        """(n_used,) complex64 channel coefficients of the last measured frame."""
        return (np.asarray(self.channel_re) + 1j * np.asarray(self.channel_im)).astype(np.complex64)
