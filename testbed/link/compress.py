"""Optional payload compression for gradients: float16, or 8-bit block quantization, with error feedback.

Arrays in, bytes out (and back), no torch here. Error feedback (Seide et al., "1-bit stochastic gradient
descent", Interspeech 2014; Karimireddy et al., "Error feedback fixes SignSGD", ICML 2019, Alg. 2) adds the
quantization error of one round to the next round's input, so the error does not accumulate over rounds.

Wire format: magic b"GQ", version u8, codec id u8, ndim u8, dims u32 each, then the codec body:
float16: the values as little-endian float16; int8: per block of ``block`` values a float32 scale
(max |x| / 127) followed by the int8 codes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from testbed.errors import LinkError

MAGIC = b"GQ"
VERSION = 1
FLOAT16_MAX = 65504.0  # largest finite IEEE 754 binary16 value
INT8_LEVELS = 127  # symmetric codes -127..127


class GradientCodec(Protocol):
    """Lossy array codec: ``decode(encode(x))`` has x's shape, dtype float32, and a bounded error."""

    codec_id: int

    def encode(self, x: np.ndarray) -> bytes: ...

    def decode(self, blob: bytes) -> np.ndarray: ...


def _check_array(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating) or arr.ndim > 8:
        raise LinkError(f"gradient codecs take float arrays of at most 8 dims, got {arr.dtype} shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise LinkError(f"gradient holds {int((~np.isfinite(arr)).sum())} NaN/inf values; fix them before sending")
    return arr


def _head(codec_id: int, shape: tuple[int, ...]) -> bytes:
    return MAGIC + struct.pack(f"<BBB{len(shape)}I", VERSION, codec_id, len(shape), *shape)


def _split(blob: bytes, codec_id: int) -> tuple[tuple[int, ...], memoryview]:
    """Parse the header; returns the shape and the body."""
    if len(blob) < 5 or blob[:2] != MAGIC or blob[2] != VERSION or blob[3] != codec_id:
        raise LinkError(f"not a codec-{codec_id} v{VERSION} gradient blob (header {bytes(blob[:5])!r})")
    ndim = blob[4]
    end = 5 + 4 * ndim
    if len(blob) < end:
        raise LinkError(f"gradient blob truncated in its shape ({len(blob)} bytes, header needs {end})")
    return struct.unpack_from(f"<{ndim}I", blob, 5), memoryview(blob)[end:]


@dataclass(frozen=True)
class Float16Codec:
    """Half precision: 2 bytes per value, relative error <= 2^-11 within +-65504 (values beyond clip)."""

    codec_id: int = 1

    def encode(self, x: np.ndarray) -> bytes:
        arr = _check_array(x)
        body = np.clip(arr, -FLOAT16_MAX, FLOAT16_MAX).astype("<f2").tobytes()
        return _head(self.codec_id, arr.shape) + body

    def decode(self, blob: bytes) -> np.ndarray:
        shape, body = _split(blob, self.codec_id)
        n = int(np.prod(shape, dtype=np.int64))
        if len(body) != 2 * n:
            raise LinkError(f"float16 body holds {len(body)} bytes, shape {shape} needs {2 * n}")
        return np.frombuffer(body, dtype="<f2").astype(np.float32).reshape(shape)


@dataclass(frozen=True)
class Int8Codec:
    """Symmetric 8-bit codes with one float32 scale per ``block`` values: about 1 + 4/block bytes per value,
    error at most scale/2 = max|x in block| / 254 per value."""

    block: int = 256
    codec_id: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.block <= 1 << 20:
            raise LinkError(f"Int8Codec block={self.block} must be in 1..2^20")

    def encode(self, x: np.ndarray) -> bytes:
        arr = _check_array(x)
        flat = arr.ravel()
        n_blocks = -(-flat.size // self.block)
        padded = np.zeros(n_blocks * self.block, np.float32)
        padded[: flat.size] = flat
        blocks = padded.reshape(n_blocks, self.block)  # (n_blocks, block)
        scale = (np.abs(blocks).max(axis=1) / INT8_LEVELS).astype("<f4")
        safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
        codes = np.rint(blocks / safe[:, None]).astype(np.int8)
        return _head(self.codec_id, arr.shape) + scale.tobytes() + codes.ravel()[: flat.size].tobytes()

    def decode(self, blob: bytes) -> np.ndarray:
        shape, body = _split(blob, self.codec_id)
        n = int(np.prod(shape, dtype=np.int64))
        n_blocks = -(-n // self.block)
        if len(body) != 4 * n_blocks + n:
            raise LinkError(f"int8 body holds {len(body)} bytes, shape {shape} needs {4 * n_blocks + n}")
        scale = np.frombuffer(body[: 4 * n_blocks], dtype="<f4")
        codes = np.zeros(n_blocks * self.block, np.float32)
        codes[:n] = np.frombuffer(body[4 * n_blocks :], dtype=np.int8)
        values = codes.reshape(n_blocks, self.block) * scale[:, None]  # (n_blocks, block)
        return values.ravel()[:n].reshape(shape)


@dataclass
class ErrorFeedback:
    """Wraps a codec for one stream of same-shaped arrays (one per round), carrying the residual forward."""

    codec: GradientCodec
    residual: np.ndarray | None = field(default=None, repr=False)

    def encode(self, x: np.ndarray) -> bytes:
        """Encode ``x`` plus the previous rounds' quantization error; remember the new error."""
        arr = _check_array(x)
        if self.residual is not None and self.residual.shape != arr.shape:
            raise LinkError(f"error feedback holds a residual of shape {self.residual.shape}, got {arr.shape}; "
                            "use one ErrorFeedback per array")  # fmt: skip
        target = arr if self.residual is None else arr + self.residual
        blob = self.codec.encode(target)
        self.residual = target - self.codec.decode(blob)
        return blob

    def decode(self, blob: bytes) -> np.ndarray:
        return self.codec.decode(blob)


@dataclass(frozen=True)
class CodecFigures:
    """Measured size and error of one encoding: bytes, and errors relative to the input's RMS."""

    raw_bytes: int
    coded_bytes: int
    rms_error: float
    max_abs_error: float
    relative_rms_error: float

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.coded_bytes


def measure(codec: GradientCodec, x: np.ndarray) -> CodecFigures:
    """Encode and decode ``x`` once and report size and error (what the learning layer trades for airtime)."""
    arr = _check_array(x)
    blob = codec.encode(arr)
    err = codec.decode(blob) - arr
    rms = float(np.sqrt(np.mean(err.astype(np.float64) ** 2))) if arr.size else 0.0
    ref = float(np.sqrt(np.mean(arr.astype(np.float64) ** 2))) if arr.size else 0.0
    return CodecFigures(4 * arr.size, len(blob), rms, float(np.abs(err).max(initial=0.0)), rms / ref if ref else 0.0)
