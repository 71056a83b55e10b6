"""Robust aggregation guards: whatever a UE sends, the global model stays finite.

An update is refused when a tensor is missing or extra, has the wrong shape or dtype, holds NaN/Inf,
reports a sample count outside 1..its registered data size, or has an L2 norm above
``norm_factor`` times the median of the round's candidate norms and the previous round's accepted median
(a norm-based outlier filter in the spirit of Sun et al., "Can You Really Backdoor Federated Learning?",
2019, sec. 4). The carried-over median keeps a lone oversized update from judging itself; in the very
first round, with no history and fewer than three sound updates, a scaled update can still pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Update:
    """A pseudo-gradient ``tensors`` (name -> tensor, model parameter shapes) from ``source`` over ``num_samples``."""

    source: str
    tensors: Mapping[str, torch.Tensor]
    num_samples: int


def structural_problem(update: Update, reference: Mapping[str, torch.Tensor], max_samples: int) -> str | None:
    """Why ``update`` cannot be used (shape, dtype, finiteness, sample count), or None if it can."""
    if set(update.tensors) != set(reference):
        missing, extra = set(reference) - set(update.tensors), set(update.tensors) - set(reference)
        return f"tensor names differ (missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]})"
    for name, ref in reference.items():
        t = update.tensors[name]
        if not isinstance(t, torch.Tensor) or t.shape != ref.shape or t.dtype != ref.dtype:
            got = (tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) else type(t).__name__
            return f"{name}: expected {tuple(ref.shape)} {ref.dtype}, got {got}"
        if not bool(torch.isfinite(t).all()):
            return f"{name}: holds NaN or Inf"
    if not (isinstance(update.num_samples, int) and 1 <= update.num_samples <= max_samples):
        return f"num_samples={update.num_samples!r} outside 1..{max_samples}"
    return None


def update_norm(update: Update) -> float:
    """L2 norm over all tensors of ``update``."""
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in update.tensors.values()))


def screen(
    updates: Sequence[Update],
    reference: Mapping[str, torch.Tensor],
    max_samples: Mapping[str, int],
    norm_factor: float,
    previous_median_norm: float | None = None,
) -> tuple[list[Update], dict[str, str], float | None]:
    """Split ``updates`` into (accepted, {source: reason refused}, median norm of the accepted ones).

    ``reference`` holds the expected tensors; ``previous_median_norm`` is the last round's median.
    """
    rejected: dict[str, str] = {}
    sound = []
    for u in updates:
        problem = structural_problem(u, reference, max_samples.get(u.source, 0))
        if problem is None:
            sound.append(u)
        else:
            rejected[u.source] = problem
    accepted_median = None
    if sound:
        norms = [update_norm(u) for u in sound]
        history = [previous_median_norm] if previous_median_norm is not None else []
        median = float(torch.tensor(norms + history).median())
        kept = []
        for u, n in zip(sound, norms, strict=True):
            if n > norm_factor * median:
                rejected[u.source] = f"norm {n:.3g} > {norm_factor:g} x round median {median:.3g}"
            else:
                kept.append(u)
        sound = kept
        accepted_median = float(torch.tensor([n for n in norms if n <= norm_factor * median]).median())
    for source, reason in rejected.items():
        log.warning("refused update from %s: %s", source, reason)
    return sound, rejected, accepted_median


def symbol_problem(received: torch.Tensor, labels: torch.Tensor, num_symbols: int, num_classes: int) -> str | None:
    """Why a centralized-decoder upload cannot be used, or None: (M, k) complex64 finite, (M,) int64 labels."""
    if received.ndim != 2 or received.shape[1] != num_symbols or received.dtype != torch.complex64:
        return f"symbols must be (M, {num_symbols}) complex64, got {tuple(received.shape)} {received.dtype}"
    if labels.shape != (received.shape[0],) or labels.dtype != torch.int64 or received.shape[0] == 0:
        return f"labels must be ({received.shape[0]},) int64 and non-empty, got {tuple(labels.shape)} {labels.dtype}"
    if not bool(torch.isfinite(torch.view_as_real(received)).all()):
        return "symbols hold NaN or Inf"
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        return f"labels outside 0..{num_classes - 1}"
    return None
