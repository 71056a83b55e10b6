"""Bytes for what crosses the air in a round: the model, a distributed update, symbols, raw samples.
With split learning (testbed/learning/split.py) the model broadcast also carries a per-UE symbol gradient
section and a symbol upload the UE's encoder gradient.

Symbols cross as analog OFDM frames (testbed/link/analog.py); only their index (labels, which rows each frame
carries, each frame's power) is bytes, sent digitally with CRC and ARQ beside them.

Each object is one msgpack map decoded by msgspec into a typed struct (never pickle or ``torch.load``: the
bytes come from another machine). Arrays travel as ``Array`` (dtype string, shape, raw little-endian bytes)
and are checked against what the receiver expects before a tensor is made: dtype, shape (against the
receiver's own model for parameters), byte count, and bounded sizes. Anything else raises ``LearningError``
saying what was expected; the BS then counts and drops that contribution (the guards still judge the
values: NaN, norms). Raw pixels go as 8-bit grey (``ClockConfig.bytes_per_pixel`` = 1), labels as one byte.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeVar

import msgspec
import numpy as np
import torch
from msgspec import Meta, Struct

from testbed.errors import LearningError
from testbed.learning.data import ImageDataset
from testbed.learning.guards import Update
from testbed.learning.modes import SentSymbols, SymbolUpload
from testbed.learning.split import SymbolGradient

WIRE_VERSION = 1
MAX_MESSAGE_BYTES = 64 << 20  # refuse before decoding; the tiny and MNIST codecs need < 200 kB
MAX_ROWS = 1 << 16  # symbol rows or raw samples in one upload
MAX_LABEL = 255  # labels travel as one byte
PIXEL_LEVELS = 255.0  # 8-bit grey

DType = Literal["<f4", "<c8", "|u1"]
Dim = Annotated[int, Meta(ge=0, le=2**31 - 1)]
RoundIndex = Annotated[int, Meta(ge=0, le=2**31 - 1)]
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


@dataclass(frozen=True)
class ModelState:
    """A decoded model broadcast: round, parameters (name -> tensor), raw requests (UE -> (start, count)), symbol
    gradients (UE -> the section, or why it cannot be used: a bad section spoils only itself)."""

    round_index: int
    tensors: dict[str, torch.Tensor]
    raw_requests: dict[str, tuple[int, int]]
    symbol_grads: dict[str, SymbolGradient | str] = field(default_factory=dict)


# --- arrays ---------------------------------------------------------------------------------------------
def _to_array(t: torch.Tensor) -> Array:
    a = np.ascontiguousarray(t.detach().cpu().numpy())
    for name, dt in _NUMPY.items():
        if a.dtype == dt.newbyteorder("="):
            return Array(name, list(a.shape), a.astype(dt, copy=False).tobytes())
    raise LearningError(f"cannot send a {a.dtype} tensor; expected float32, complex64 or uint8")


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


def _tensors(got: Mapping[str, Array], reference: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    if set(got) != set(reference):
        missing, extra = sorted(set(reference) - set(got)), sorted(set(got) - set(reference))
        raise LearningError(f"{what}: tensor names differ from the model (missing {missing[:3]}, extra {extra[:3]})")
    out = {}
    for name, ref in reference.items():
        if ref.dtype != torch.float32:
            raise LearningError(f"{what}: the reference {name} is {ref.dtype}; only float32 models are sent")
        out[name] = torch.from_numpy(_from_array(got[name], f"{what} {name}", "<f4", list(ref.shape)))
    return out


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


def _label_bytes(labels: torch.Tensor) -> torch.Tensor:
    if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) <= MAX_LABEL):
        raise LearningError(f"labels must lie in 0..{MAX_LABEL} for the one-byte wire format")
    return labels.to(torch.uint8)


def _labels(arr: Array, n: int, num_classes: int, what: str) -> torch.Tensor:
    labels = _from_array(arr, f"{what} labels", "|u1", [n])
    if n and int(labels.max()) >= num_classes:
        raise LearningError(f"{what}: labels must lie in 0..{num_classes - 1}, got {int(labels.max())}")
    return torch.from_numpy(labels.astype(np.int64))


# --- model ----------------------------------------------------------------------------------------------
def encode_model(
    model: torch.nn.Module,
    round_index: int,
    raw_requests: Mapping[str, tuple[int, int]],
    symbol_grads: Mapping[str, SymbolGradient] | None = None,
) -> bytes:
    """The broadcast of round ``round_index``: every parameter (float32), the raw requests and the symbol
    gradients of the plan."""
    tensors = {name: _to_array(p) for name, p in model.state_dict().items()}
    sections = {ue: GradSection(g.round_index, _to_array(g.grads)) for ue, g in (symbol_grads or {}).items()}
    raw = {k: tuple(v) for k, v in raw_requests.items()}
    return _encode(ModelMsg(WIRE_VERSION, round_index, tensors, raw, sections))


def decode_model(data: bytes, reference: torch.nn.Module, round_index: int | None = None) -> ModelState:
    """A broadcast checked against the receiver's own model (names, shapes, float32, finite values)."""
    msg = _decode(data, ModelMsg, "model broadcast")
    _round(msg, round_index, "model broadcast")
    tensors = _tensors(msg.tensors, reference.state_dict(), "model broadcast")
    for name, t in tensors.items():
        if not bool(torch.isfinite(t).all()):
            raise LearningError(f"model broadcast: {name} holds NaN or Inf; the BS model is broken")
    raw = {k: (int(a), int(b)) for k, (a, b) in msg.raw_requests.items()}
    grads = {ue: _symbol_grad(section, ue) for ue, section in msg.symbol_grads.items()}
    return ModelState(msg.round_index, tensors, raw, grads)


def _symbol_grad(section: GradSection, ue: str) -> SymbolGradient | str:
    """The section decoded, or the reason it is refused: (M, k) complex64, M <= MAX_ROWS, finite values."""
    what = f"symbol gradient for {ue}"
    try:
        grads = torch.from_numpy(_from_array(section.grads, what, "<c8", [None, None]))
    except LearningError as exc:
        return str(exc)
    if not bool(torch.isfinite(torch.view_as_real(grads)).all()):
        return f"{what}: holds NaN or Inf"
    return SymbolGradient(section.round_index, grads)


# --- distributed update ---------------------------------------------------------------------------------
def encode_update(update: Update, round_index: int) -> bytes:
    """A distributed UE's upload: g_k per parameter and n_k."""
    tensors = {name: _to_array(t) for name, t in update.tensors.items()}
    return _encode(UpdateMsg(WIRE_VERSION, round_index, int(update.num_samples), tensors))


def decode_update(
    data: bytes, source: str, reference: Mapping[str, torch.Tensor], round_index: int | None = None
) -> Update:
    """The update of UE ``source``; names, shapes and dtype checked here, values by the guards."""
    what = f"update from {source}"
    msg = _decode(data, UpdateMsg, what)
    _round(msg, round_index, what)
    return Update(source, _tensors(msg.tensors, reference, what), msg.num_samples)


# --- symbols --------------------------------------------------------------------------------------------
def encode_symbols(sent: SentSymbols, round_index: int, frame_symbols: int) -> tuple[bytes, list[np.ndarray]]:
    """A centralized-decoder UE's upload: the digital index (labels, frame layout, each frame's power; with
    ``sent.split`` its encoder gradient for the symbol gradient of round ``round_index - 1``) and the analog
    frames, whole rows of at most ``frame_symbols`` complex values each ((n,) complex64 arrays)."""
    x = np.ascontiguousarray(sent.symbols.detach().cpu().numpy().astype(np.complex64))  # (M, k)
    if x.ndim != 2 or not x.shape[0] or x.shape[0] > MAX_ROWS:
        raise LearningError(f"symbols must be (M, k) with 1 <= M <= {MAX_ROWS}, got {x.shape}")
    rows = frame_symbols // x.shape[1]
    if rows < 1:
        raise LearningError(f"one row of {x.shape[1]} symbols does not fit an analog frame of {frame_symbols}")
    frames = [x[i : i + rows].reshape(-1) for i in range(0, x.shape[0], rows)]
    power = np.array([np.mean(np.abs(f.astype(np.complex128)) ** 2) for f in frames], np.float32)
    if not np.all(np.isfinite(power) & (power > 0)):
        raise LearningError("every analog frame needs finite, non-zero symbols (they are sent at unit power)")
    labels = _to_array(_label_bytes(sent.labels))
    split = None
    if sent.split is not None:
        tensors = {name: _to_array(t) for name, t in sent.split.tensors.items()}
        split = EncoderGrad(max(0, round_index - 1), int(sent.split.num_samples), tensors)
    msg = SymbolsMsg(WIRE_VERSION, round_index, rows, _to_array(torch.from_numpy(power)), labels, split)
    return _encode(msg), frames


def decode_symbols(
    data: bytes, frames: Mapping[int, tuple[np.ndarray, float]], source: str, num_symbols: int, num_classes: int,
    round_index: int | None = None, encoder: Mapping[str, torch.Tensor] | None = None,
) -> SymbolUpload:  # fmt: skip
    """What the BS trains on from UE ``source``: the rows of the analog frames that arrived (frame index ->
    (received (n,) values at unit power, the receiver's noise variance)), scaled back by the index's frame
    powers, with their labels; N0 is the row-weighted mean of the frames' scaled noise variances. An encoder
    gradient is checked against ``encoder`` (the receiver's phi, ``encoder.<name>`` -> tensor; None: the
    receiver expects none) and must answer the symbol gradient of the round before. Raises LearningError on a
    malformed index, a frame of the wrong length, or when no frame arrived."""
    what = f"symbols from {source}"
    msg = _decode(data, SymbolsMsg, what)
    _round(msg, round_index, what)
    labels = _labels(msg.labels, msg.labels.shape[0] if msg.labels.shape else 0, num_classes, what)
    m, rows = labels.shape[0], msg.rows_per_frame
    count = -(-m // rows)
    power = _from_array(msg.frame_power, f"{what} frame powers", "<f4", [count])
    if not m or not np.all(np.isfinite(power) & (power > 0)):
        raise LearningError(f"{what}: needs at least one label and finite frame powers > 0")
    split = None
    if msg.split is not None:
        if encoder is None:
            raise LearningError(f"{what}: carries an encoder gradient, but split learning is off here")
        if round_index is not None and msg.split.round_index != round_index - 1:
            raise LearningError(
                f"{what}: encoder gradient for round {msg.split.round_index}, expected round {round_index - 1}"
            )
        split = Update(source, _tensors(msg.split.tensors, encoder, f"{what} encoder gradient"), msg.split.num_samples)
    got, noise, keep = [], [], []
    for f in range(count):
        if f not in frames:
            continue
        values, noise_var = frames[f]
        n_rows = min(rows, m - f * rows)
        if values.shape != (n_rows * num_symbols,) or not (math.isfinite(noise_var) and noise_var > 0):
            raise LearningError(
                f"{what}: analog frame {f} holds {values.shape} values with noise variance {noise_var!r}; expected "
                f"{n_rows * num_symbols} values and a finite variance > 0"
            )
        scale = np.sqrt(power[f])
        got.append((values.astype(np.complex64) * scale).reshape(n_rows, num_symbols))
        noise.append(noise_var * float(power[f]) * n_rows)
        keep.append(torch.arange(f * rows, f * rows + n_rows))
    if not got:
        raise LearningError(f"{what}: none of its {count} analog frames arrived")
    received = torch.from_numpy(np.concatenate(got))
    n = received.shape[0]
    return SymbolUpload(source, received, float(sum(noise) / n), labels[torch.cat(keep)], split)


# --- raw samples ----------------------------------------------------------------------------------------
def encode_raw(block: ImageDataset, start: int, round_index: int) -> bytes:
    """A centralized-full UE's upload: samples ``start``.. as 8-bit grey images and one-byte labels."""
    pixels = torch.round(block.images[:, 0].clamp(0.0, 1.0) * PIXEL_LEVELS).to(torch.uint8)  # (N, H, W)
    labels = _to_array(_label_bytes(block.labels))
    return _encode(RawMsg(WIRE_VERSION, round_index, start, _to_array(pixels), labels))


def decode_raw(
    data: bytes,
    source: str,
    image_size_px: int,
    num_classes: int,
    request: tuple[int, int],
    round_index: int | None = None,
) -> ImageDataset:
    """The raw block of UE ``source``; it must be exactly the ``request`` (first sample, count) of the plan."""
    what = f"raw samples from {source}"
    msg = _decode(data, RawMsg, what)
    _round(msg, round_index, what)
    start, count = request
    if msg.start != start:
        raise LearningError(f"{what}: starts at sample {msg.start}, the plan asked for {start}")
    pixels = _from_array(msg.images, what, "|u1", [count, image_size_px, image_size_px])
    labels = _labels(msg.labels, count, num_classes, what)
    images = torch.from_numpy(pixels.astype(np.float32) / np.float32(PIXEL_LEVELS)).unsqueeze(1)  # (N, 1, H, W)
    return ImageDataset(images, labels, num_classes)
