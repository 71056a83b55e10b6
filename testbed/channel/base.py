"""The channel-model contract: a model is a callable on a block of complex baseband samples.

Models are frozen dataclass configs (units in the field names) with any randomness drawn from a
``np.random.Generator`` passed in, so one seed gives one output sequence. Models that carry state across
calls (oscillator phase, filter tails, resampler position) keep it in a private mutable field, so a stream
processed block by block gives the same samples as one long block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from testbed.errors import ChannelError


@runtime_checkable
class ChannelModel(Protocol):
    """Anything that maps a block of samples to the block the receiver sees."""

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """iq : (n,) complex64 baseband samples -> (m,) complex64; m == n except for timing/clock models."""
        ...


def as_iq(iq: np.ndarray, model: str) -> np.ndarray:
    """Validate and view ``iq`` as a (n,) complex64 array (copying only when the dtype differs).

    Raises ChannelError naming ``model`` when the input is not a one-dimensional numeric array.
    """
    arr = np.asarray(iq)
    if arr.ndim != 1:
        raise ChannelError(f"{model}: expected a (n,) complex sample block, got shape {arr.shape}; flatten it first")
    if not (np.issubdtype(arr.dtype, np.complexfloating) or np.issubdtype(arr.dtype, np.floating)):
        raise ChannelError(f"{model}: expected complex64 samples, got dtype {arr.dtype}")
    return arr.astype(np.complex64, copy=False)


def require(condition: bool, message: str) -> None:
    """Raise ChannelError(message) unless ``condition``; keeps parameter checks one line each."""
    if not condition:
        raise ChannelError(message)


def require_finite(name: str, value: float, *, low: float = -np.inf, high: float = np.inf) -> None:
    """Check that a scalar parameter is a finite number within [low, high]."""
    require(
        np.isfinite(value) and low <= value <= high,
        f"{name}={value!r} must be a finite number in [{low:g}, {high:g}]",
    )


@dataclass(frozen=True)
class Chain:
    """Apply several models in order (e.g. path loss, multipath, CFO, noise)."""

    models: Sequence[ChannelModel]

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        for m in self.models:
            require(callable(m), f"Chain: every model must be callable on a sample block, got {type(m).__name__}")

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        out = as_iq(iq, "Chain")
        for model in self.models:
            out = model(out)
        return out
