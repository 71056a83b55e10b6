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
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from testbed.errors import LearningError
from testbed.learning.data import ImageDataset
from testbed.learning.guards import Update
from testbed.learning.modes import SentSymbols, SymbolUpload
from testbed.learning.split import SymbolGradient
from testbed.learning.wire_format import (
    PIXEL_LEVELS,
    WIRE_VERSION,
    Array,
    EncoderGrad,
    GradSection,
    ModelMsg,
    RawMsg,
    SymbolsMsg,
    UpdateMsg,
    _decode,
    _encode,
    _from_array,
    _round,
    checked_labels,
    decode_model_msg,
    encode_raw_arrays,
    encode_symbol_arrays,
    parameters,
    raw_requests,
    to_array,
)


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
    return to_array(t.detach().cpu().numpy())


def _shapes(reference: Mapping[str, torch.Tensor], what: str) -> dict[str, list[int]]:
    for name, ref in reference.items():
        if ref.dtype != torch.float32:
            raise LearningError(f"{what}: the reference {name} is {ref.dtype}; only float32 models are sent")
    return {name: list(ref.shape) for name, ref in reference.items()}


def _tensors(got: Mapping[str, Array], reference: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    return {n: torch.from_numpy(a) for n, a in parameters(got, _shapes(reference, what), what).items()}


def _labels(arr: Array, n: int, num_classes: int, what: str) -> torch.Tensor:
    return torch.from_numpy(checked_labels(arr, n, num_classes, what))


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
    msg, arrays = decode_model_msg(data, _shapes(reference.state_dict(), "model broadcast"), round_index)
    tensors = {name: torch.from_numpy(a) for name, a in arrays.items()}
    grads = {ue: _symbol_grad(section, ue) for ue, section in msg.symbol_grads.items()}
    return ModelState(msg.round_index, tensors, raw_requests(msg), grads)


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
    split = None
    if sent.split is not None:
        tensors = {name: _to_array(t) for name, t in sent.split.tensors.items()}
        split = EncoderGrad(max(0, round_index - 1), int(sent.split.num_samples), tensors)
    symbols = sent.symbols.detach().cpu().numpy()
    return encode_symbol_arrays(symbols, sent.labels.numpy(), round_index, frame_symbols, split)


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
    return encode_raw_arrays(block.images.numpy(), block.labels.numpy(), start, round_index)


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
