"""The encoder phi's forward pass in numpy, from the model broadcast's bytes: what a UE in a centralized mode
runs, so that it needs no torch (a Pi Zero 2 W has 512 MB; importing torch alone costs over 200 MB).

The same layers as testbed/learning/codec.py's Encoder (codec_config.py names their sizes) in float32:
standardise, conv 5x5 stride 2, ReLU, conv 3x3 stride 2, ReLU, adaptive average pooling, linear to 2k reals
read as k complex values, scaled to unit mean power per image. Tested equal to torch's within float32
tolerance (tests/learning/test_encoder_np.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from testbed.errors import LearningError
from testbed.learning.codec_config import (
    CONV1_PADDING,
    CONV1_STRIDE,
    CONV2_PADDING,
    CONV2_STRIDE,
    PIXEL_MEAN,
    PIXEL_STD,
    CodecConfig,
    parameter_shapes,
    pooled_side,
)
from testbed.learning.wire_format import ModelMsg, decode_model_msg

ENCODER_PREFIX = "encoder."


def _conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """x (B, C, H, W) float32, weight (O, C, K, K) -> (B, O, H', W'), as torch's Conv2d (cross-correlation)."""
    k = weight.shape[-1]
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # (B, C, H', W', K, K)
    out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))  # (B, H', W', O)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) + bias[:, None, None]


def _adaptive_avg_pool(x: np.ndarray, side: int) -> np.ndarray:
    """x (B, C, H, W) -> (B, C, side, side): bin i spans floor(i H / side) .. ceil((i + 1) H / side), as torch's
    AdaptiveAvgPool2d."""
    h, w = x.shape[-2:]
    rows = [(i * h // side, -(-(i + 1) * h // side)) for i in range(side)]
    cols = [(j * w // side, -(-(j + 1) * w // side)) for j in range(side)]
    out = np.empty((*x.shape[:2], side, side), np.float32)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


class NumpyEncoder:
    """phi: (batch, 1, H, W) float32 in [0, 1] -> (batch, k) complex64 with mean |x|^2 = 1 per image.

    ``weights``: the encoder's parameters by state_dict name (``encoder.`` prefix optional), float32; None:
    zeros until the first broadcast (a UE times its capability on them: the same arithmetic)."""

    def __init__(self, cfg: CodecConfig, weights: Mapping[str, np.ndarray] | None = None) -> None:
        self.cfg = cfg
        self.shapes = parameter_shapes(cfg)
        self.pooled = pooled_side(cfg)
        self.weights: dict[str, np.ndarray] = {}
        zeros = {n: np.zeros(shape, np.float32) for n, shape in self.shapes.items() if n.startswith(ENCODER_PREFIX)}
        self.load(zeros if weights is None else weights)

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        """Take phi's parameters from ``weights`` (a whole model's are fine: only ``encoder.*`` are read)."""
        named = {(n if n.startswith(ENCODER_PREFIX) else ENCODER_PREFIX + n): w for n, w in weights.items()}
        self.weights = {}
        for name, shape in self.shapes.items():
            if not name.startswith(ENCODER_PREFIX):
                continue
            w = np.asarray(named[name], np.float32) if name in named else None
            if w is None or w.shape != shape:
                got = "nothing" if w is None else f"shape {w.shape}"
                raise LearningError(f"encoder weights: {name} must have shape {shape}, got {got}")
            self.weights[name.removeprefix(ENCODER_PREFIX)] = w

    def load_broadcast(self, data: bytes, round_index: int | None = None) -> ModelMsg:
        """Take phi from a model broadcast's bytes (checked as wire.decode_model checks them); returns the
        message (its round, raw requests, symbol gradients)."""
        msg, arrays = decode_model_msg(data, self.shapes, round_index)
        self.load(arrays)
        return msg

    def __call__(self, images: np.ndarray) -> np.ndarray:
        w = self.weights
        x = (np.asarray(images, np.float32) - np.float32(PIXEL_MEAN)) / np.float32(PIXEL_STD)  # (B, 1, H, W)
        x = np.maximum(_conv2d(x, w["features.0.weight"], w["features.0.bias"], CONV1_STRIDE, CONV1_PADDING), 0)
        x = np.maximum(_conv2d(x, w["features.2.weight"], w["features.2.bias"], CONV2_STRIDE, CONV2_PADDING), 0)
        x = _adaptive_avg_pool(x, self.pooled).reshape(x.shape[0], -1)  # (B, C2 * p * p), C-order as Flatten
        z = x @ w["project.weight"].T + w["project.bias"]  # (B, 2k) real
        pairs = z.reshape(z.shape[0], -1, 2)  # (B, k, 2): (real, imaginary) as torch.view_as_complex
        symbols = (pairs[..., 0] + 1j * pairs[..., 1]).astype(np.complex64)  # (B, k)
        power = np.mean(pairs[..., 0] ** 2 + pairs[..., 1] ** 2, axis=1, keepdims=True, dtype=np.float32)
        return (symbols / np.sqrt(power + np.float32(1e-12))).astype(np.complex64)
