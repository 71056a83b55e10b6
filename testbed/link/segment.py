"""Segmentation of an object into PHY frame payloads, and the per-frame checks of the receiver.

An object ``data`` is sent as the byte stream ``data || SHA-256(data)`` (FIPS 180-4) cut into chunks of
``chunk_bytes``; each PHY payload is ``segment header || chunk``. The header names the sender, the addressee,
the object, the chunk's position and the geometry of the whole stream, so a receiver can check every frame
on its own (geometry consistent, chunk length right for its position) before it keeps it. The PHY's CRC-32
guards each frame's bits; the SHA-256 guards the reassembled object: nothing is delivered unless it matches.

Header (network byte order, 26 bytes): magic u16, version u8, flags u8 (reserved, 0), src u16, dst u16
(``BROADCAST`` for all), object_id u32, seq u32, count u32, chunk_bytes u16, object_bytes u32.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

import numpy as np

from testbed.errors import LinkError

HEADER = struct.Struct("!HBBHHIIIHI")
HEADER_BYTES = HEADER.size
MAGIC = 0x544C  # "TL"
VERSION = 1
BROADCAST = 0xFFFF
DIGEST_BYTES = 32  # SHA-256 output size, FIPS 180-4
MAX_FRAMES = 65_536  # bounds a NACK bitmap to 8 KiB, small enough for one control-plane message
MAX_OBJECT_BYTES = (1 << 32) - 1  # object_bytes field is 32 bits
MAX_NODE_ID = BROADCAST - 1


@dataclass(frozen=True)
class SegmentHeader:
    """The fields of one segment header (see the module docstring for the wire layout)."""

    src: int
    dst: int
    object_id: int
    seq: int
    count: int
    chunk_bytes: int
    object_bytes: int

    @property
    def stream_bytes(self) -> int:
        """Length of ``data || digest``."""
        return self.object_bytes + DIGEST_BYTES

    def expected_chunk_len(self) -> int:
        """Chunk length the frame at ``seq`` must carry (the last one carries the remainder)."""
        if self.seq < self.count - 1:
            return self.chunk_bytes
        return self.stream_bytes - (self.count - 1) * self.chunk_bytes

    def pack(self) -> bytes:
        return HEADER.pack(
            MAGIC, VERSION, 0, self.src, self.dst, self.object_id, self.seq, self.count, self.chunk_bytes,
            self.object_bytes,
        )  # fmt: skip


def frame_count(object_bytes: int, chunk_bytes: int) -> int:
    """Number of frames an object of ``object_bytes`` needs at ``chunk_bytes`` per frame."""
    return math.ceil((object_bytes + DIGEST_BYTES) / chunk_bytes)


def segment(data: bytes, *, object_id: int, src: int, dst: int, frame_payload_bytes: int) -> list[bytes]:
    """Cut ``data`` into PHY payloads of at most ``frame_payload_bytes`` (header included), in seq order."""
    chunk_bytes = frame_payload_bytes - HEADER_BYTES
    if not 1 <= chunk_bytes <= 0xFFFF:
        raise LinkError(
            f"frame_payload_bytes={frame_payload_bytes} leaves {chunk_bytes} bytes per chunk after the "
            f"{HEADER_BYTES}-byte segment header; use {HEADER_BYTES + 1}..{HEADER_BYTES + 0xFFFF}"
        )
    if len(data) > MAX_OBJECT_BYTES:
        raise LinkError(f"object of {len(data)} bytes exceeds the {MAX_OBJECT_BYTES}-byte limit; split it")
    if not (0 <= src <= MAX_NODE_ID and 0 <= dst <= BROADCAST and 0 <= object_id < 1 << 32):
        raise LinkError(f"src={src} and dst={dst} must be node ids 0..{MAX_NODE_ID} (dst may be BROADCAST), "
                        f"object_id={object_id} must fit 32 bits")  # fmt: skip
    count = frame_count(len(data), chunk_bytes)
    if count > MAX_FRAMES:
        raise LinkError(f"object needs {count} frames, more than {MAX_FRAMES}; use larger frames or split it")
    stream = bytes(data) + hashlib.sha256(data).digest()
    frames = []
    for seq in range(count):
        head = SegmentHeader(src, dst, object_id, seq, count, chunk_bytes, len(data))
        frames.append(head.pack() + stream[seq * chunk_bytes : (seq + 1) * chunk_bytes])
    return frames


def parse(frame: bytes) -> tuple[SegmentHeader, bytes]:
    """Split a received PHY payload into its header and chunk, refusing anything inconsistent.

    Raises LinkError when the frame is truncated, foreign to this protocol, or its geometry does not add up.
    """
    if len(frame) < HEADER_BYTES:
        raise LinkError(f"frame of {len(frame)} bytes is shorter than the {HEADER_BYTES}-byte segment header")
    magic, version, _flags, *fields = HEADER.unpack_from(frame)
    if magic != MAGIC or version != VERSION:
        raise LinkError(f"not a link segment: magic {magic:#06x} version {version}, expected {MAGIC:#06x} v{VERSION}")
    head = SegmentHeader(*fields)
    chunk = bytes(frame[HEADER_BYTES:])
    if head.chunk_bytes == 0 or head.count != frame_count(head.object_bytes, head.chunk_bytes):
        raise LinkError(
            f"inconsistent geometry: count={head.count} for object_bytes={head.object_bytes} at "
            f"chunk_bytes={head.chunk_bytes}"
        )
    if head.seq >= head.count or head.count > MAX_FRAMES:
        raise LinkError(f"seq={head.seq} outside 0..count-1 (count={head.count}, at most {MAX_FRAMES})")
    if len(chunk) != head.expected_chunk_len():
        raise LinkError(f"frame {head.seq} carries {len(chunk)} bytes, expected {head.expected_chunk_len()}")
    return head, chunk


def describe_ranges(indices: np.ndarray, limit: int = 8) -> str:
    """Compact text for sorted frame indices: '3, 7-9, 12' (at most ``limit`` ranges, then '...')."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        return "none"
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts[:limit], ends[:limit], strict=True)]
    return ", ".join(parts) + (", ..." if starts.size > limit else "")
