"""The wire format of testbed/learning/wire.py without torch: the messages, the checked arrays, and what a UE
that only runs the encoder forward needs (testbed/learning/encoder_np.py): the model broadcast decoded into
numpy arrays, its symbols' index and its raw block encoded from numpy arrays.

Same bytes as wire.py's (that module converts tensors and calls these); see its docstring for the checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, TypeVar

import msgspec
import numpy as np
from msgspec import Meta, Struct

from testbed.errors import LearningError

WIRE_VERSION = 1
MAX_MESSAGE_BYTES = 64 << 20  # refuse before decoding; the tiny and MNIST codecs need < 200 kB
MAX_ROWS = 1 << 16  # symbol rows or raw samples in one upload
MAX_LABEL = 255  # labels travel as one byte
PIXEL_LEVELS = 255.0  # 8-bit grey

DType = Literal["<f4", "<c8", "|u1"]
WIDEST = 2**31 - 1  # the largest round index and count: the format's integers at their widest
Dim = Annotated[int, Meta(ge=0, le=WIDEST)]
RoundIndex = Annotated[int, Meta(ge=0, le=WIDEST)]
Name = Annotated[str, Meta(min_length=1, max_length=64)]
_NUMPY = {"<f4": np.dtype("<f4"), "<c8": np.dtype("<c8"), "|u1": np.dtype("u1")}


class Array(Struct, frozen=True, forbid_unknown_fields=True):
    """One array: numpy dtype string, shape, C-order little-endian bytes."""

    dtype: DType
    shape: Annotated[list[Dim], Meta(max_length=4)]
    data: bytes


class _Msg(Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    version: int
    round_index: RoundIndex


class GradSection(Struct, frozen=True, forbid_unknown_fields=True):
    """Split learning, BS -> one UE: d l / d y (M, k) complex64 for the symbols it sent in ``round_index``."""

    round_index: RoundIndex
    grads: Array


class EncoderGrad(Struct, frozen=True, forbid_unknown_fields=True):
    """Split learning, UE -> BS: its encoder gradient for the symbol gradient of ``round_index``, over n_k."""

    round_index: RoundIndex
    num_samples: Dim
    tensors: Annotated[dict[Name, Array], Meta(max_length=256)]


class ModelMsg(_Msg, tag="model", omit_defaults=True):
    """BS -> UEs: the global model (phi and theta), the raw block each centralized-full UE sends and, with split
    learning, the symbol gradients of the centralized-decoder UEs (each UE reads only its own)."""

    tensors: Annotated[dict[Name, Array], Meta(max_length=256)]
    raw_requests: Annotated[dict[Name, tuple[Dim, Dim]], Meta(max_length=65535)]
    symbol_grads: Annotated[dict[Name, GradSection], Meta(max_length=65535)] = {}


class UpdateMsg(_Msg, tag="update"):
    """Distributed UE -> BS: pseudo-gradient per parameter and the sample count n_k."""

    num_samples: Dim
    tensors: Annotated[dict[Name, Array], Meta(max_length=256)]


class SymbolsMsg(_Msg, tag="symbols", omit_defaults=True):
    """Centralized-decoder UE -> BS, digitally beside its analog frames: the (M,) labels and the frame index.
    Frame f carries rows f * rows_per_frame .. of the (M, k) symbols, row after row, which the transmitter
    scaled by 1 / sqrt(frame_power[f]) to unit mean power; the BS scales what it receives back. With split
    learning, the encoder gradient for last round's symbol gradient."""

    rows_per_frame: Annotated[int, Meta(ge=1, le=MAX_ROWS)]
    frame_power: Array
    labels: Array
    split: EncoderGrad | None = None


class RawMsg(_Msg, tag="raw"):
    """Centralized-full UE -> BS: samples start..start+N-1 as (N, H, W) 8-bit grey, (N,) labels."""

    start: Dim
    images: Array
    labels: Array


def _from_array(arr: Array, what: str, dtype: DType, shape: Sequence[int | None]) -> np.ndarray:
    """The checked array; ``None`` in ``shape`` accepts any size up to MAX_ROWS in that dimension."""
    if arr.dtype != dtype or len(arr.shape) != len(shape):
        raise LearningError(f"{what}: expected {dtype} with {len(shape)} dimensions, got {arr.dtype} {arr.shape}")
    for got, want in zip(arr.shape, shape, strict=True):
        if (want is None and got > MAX_ROWS) or (want is not None and got != want):
            raise LearningError(f"{what}: expected shape {list(shape)} (None: up to {MAX_ROWS}), got {arr.shape}")
    dt = _NUMPY[dtype]
    if len(arr.data) != math.prod(arr.shape) * dt.itemsize:
        raise LearningError(
            f"{what}: shape {arr.shape} needs {math.prod(arr.shape) * dt.itemsize} bytes, got {len(arr.data)}"
        )
    return np.frombuffer(arr.data, dtype=dt).reshape(arr.shape).astype(dt.newbyteorder("="))


def _encode(msg: _Msg) -> bytes:
    return msgspec.msgpack.encode(msg)


M = TypeVar("M", bound=_Msg)


def _decode(data: bytes, kind: type[M], what: str) -> M:
    if len(data) > MAX_MESSAGE_BYTES:
        raise LearningError(f"{what}: {len(data)} bytes exceed the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        msg = msgspec.msgpack.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:  # bad UTF-8 names
        raise LearningError(
            f"{what}: not a valid {kind.__name__} ({exc}); the sender must use testbed.learning.wire"
        ) from exc
    if msg.version != WIRE_VERSION:
        raise LearningError(f"{what}: wire version {msg.version}, this node speaks {WIRE_VERSION}; update both ends")
    return msg


def _round(msg: _Msg, round_index: int | None, what: str) -> None:
    if round_index is not None and msg.round_index != round_index:
        raise LearningError(f"{what}: for round {msg.round_index}, expected round {round_index}")


def to_array(a: np.ndarray) -> Array:
    """A float32, complex64 or uint8 numpy array as it crosses the wire."""
    a = np.ascontiguousarray(a)
    for name, dt in _NUMPY.items():
        if a.dtype == dt.newbyteorder("="):
            return Array(name, list(a.shape), a.astype(dt, copy=False).tobytes())
    raise LearningError(f"cannot send a {a.dtype} array; expected float32, complex64 or uint8")


def parameters(got: Mapping[str, Array], shapes: Mapping[str, Sequence[int]], what: str) -> dict[str, np.ndarray]:
    """float32 arrays named and shaped as ``shapes`` (the receiver's own model), in its order."""
    if set(got) != set(shapes):
        missing, extra = sorted(set(shapes) - set(got)), sorted(set(got) - set(shapes))
        raise LearningError(f"{what}: tensor names differ from the model (missing {missing[:3]}, extra {extra[:3]})")
    return {name: _from_array(got[name], f"{what} {name}", "<f4", list(shape)) for name, shape in shapes.items()}


def label_array(labels: np.ndarray) -> Array:
    """(M,) integer labels as one byte each."""
    labels = np.asarray(labels)
    if labels.size and not (0 <= int(labels.min()) and int(labels.max()) <= MAX_LABEL):
        raise LearningError(f"labels must lie in 0..{MAX_LABEL} for the one-byte wire format")
    return to_array(labels.astype(np.uint8))


def checked_labels(arr: Array, n: int, num_classes: int, what: str) -> np.ndarray:
    """(n,) int64 labels in 0..num_classes-1."""
    labels = _from_array(arr, f"{what} labels", "|u1", [n])
    if n and int(labels.max()) >= num_classes:
        raise LearningError(f"{what}: labels must lie in 0..{num_classes - 1}, got {int(labels.max())}")
    return labels.astype(np.int64)


# --- model ----------------------------------------------------------------------------------------------
def decode_model_msg(
    data: bytes, shapes: Mapping[str, Sequence[int]], round_index: int | None = None
) -> tuple[ModelMsg, dict[str, np.ndarray]]:
    """A broadcast and its parameters checked against ``shapes`` (names, shapes, float32, finite values)."""
    msg = _decode(data, ModelMsg, "model broadcast")
    _round(msg, round_index, "model broadcast")
    arrays = parameters(msg.tensors, shapes, "model broadcast")
    for name, a in arrays.items():
        if not bool(np.isfinite(a).all()):
            raise LearningError(f"model broadcast: {name} holds NaN or Inf; the BS model is broken")
    return msg, arrays


def raw_requests(msg: ModelMsg) -> dict[str, tuple[int, int]]:
    """The broadcast's raw requests: UE -> (first sample, count)."""
    return {k: (int(a), int(b)) for k, (a, b) in msg.raw_requests.items()}


# --- symbols and raw samples ----------------------------------------------------------------------------
def encode_symbol_arrays(
    symbols: np.ndarray, labels: np.ndarray, round_index: int, frame_symbols: int, split: EncoderGrad | None = None
) -> tuple[bytes, list[np.ndarray]]:
    """The symbols' index and analog frames (wire.encode_symbols) of ``symbols`` (M, k) complex and ``labels``."""
    x = np.ascontiguousarray(np.asarray(symbols).astype(np.complex64))  # (M, k)
    if x.ndim != 2 or not x.shape[0] or x.shape[0] > MAX_ROWS:
        raise LearningError(f"symbols must be (M, k) with 1 <= M <= {MAX_ROWS}, got {x.shape}")
    rows = frame_symbols // x.shape[1]
    if rows < 1:
        raise LearningError(f"one row of {x.shape[1]} symbols does not fit an analog frame of {frame_symbols}")
    frames = [x[i : i + rows].reshape(-1) for i in range(0, x.shape[0], rows)]
    power = np.array([np.mean(np.abs(f.astype(np.complex128)) ** 2) for f in frames], np.float32)
    if not np.all(np.isfinite(power) & (power > 0)):
        raise LearningError("every analog frame needs finite, non-zero symbols (they are sent at unit power)")
    msg = SymbolsMsg(WIRE_VERSION, round_index, rows, to_array(power), label_array(labels), split)
    return _encode(msg), frames


def encode_raw_arrays(images: np.ndarray, labels: np.ndarray, start: int, round_index: int) -> bytes:
    """A raw block (wire.encode_raw): ``images`` (N, 1, H, W) float32 in [0, 1] as 8-bit grey, one-byte labels."""
    pixels = np.round(np.clip(images[:, 0], 0.0, 1.0) * np.float32(PIXEL_LEVELS)).astype(np.uint8)  # (N, H, W)
    return _encode(RawMsg(WIRE_VERSION, round_index, start, to_array(pixels), label_array(labels)))
