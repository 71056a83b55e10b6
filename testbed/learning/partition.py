"""Splitting the training set across UEs: IID, Dirichlet label skew, and weak UEs with exclusive classes.

Each function returns one sorted (n_k,) int64 index array per UE. ``shares`` (one weight per UE, any
positive scale) sets how many samples each UE holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from testbed.errors import ConfigError


def _counts(total: int, shares: Sequence[float]) -> np.ndarray:
    w = np.asarray(shares, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ConfigError(f"data shares must be positive finite numbers, one per UE; got {list(shares)}")
    raw = w / w.sum() * total
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(raw - counts)[::-1][: total - counts.sum()]] += 1  # largest remainders
    return counts


def iid(labels: np.ndarray, shares: Sequence[float], rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and cut into pieces proportional to ``shares``."""
    perm = rng.permutation(len(labels))
    bounds = np.cumsum(_counts(len(labels), shares))[:-1]
    return [np.sort(p) for p in np.split(perm, bounds)]


def dirichlet(labels: np.ndarray, shares: Sequence[float], alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Label skew: each class is spread over UEs by Dirichlet(alpha * shares) (Hsu et al. 2019, sec. 3)."""
    if not alpha > 0:
        raise ConfigError(f"dirichlet alpha={alpha} must be > 0 (small = more skew)")
    w = _counts(10_000, shares) / 10_000.0
    parts: list[list[np.ndarray]] = [[] for _ in shares]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        p = rng.dirichlet(alpha * len(shares) * w)
        bounds = np.cumsum(np.floor(p * len(idx)).astype(np.int64))[:-1]
        for k, piece in enumerate(np.split(idx, bounds)):
            parts[k].append(piece)
    return [np.sort(np.concatenate(p)) for p in parts]


def weak_exclusive(
    labels: np.ndarray,
    shares: Sequence[float],
    weak: Sequence[bool],
    exclusive_classes: Sequence[int],
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Weak UEs own ``exclusive_classes`` (nobody else has them); all other classes go IID to strong UEs.

    Weak UE i also receives nothing else, so dropping the weak UEs loses those classes entirely.
    """
    weak = np.asarray(weak, dtype=bool)
    if len(weak) != len(shares) or not weak.any() or weak.all():
        raise ConfigError("weak_exclusive needs one weak flag per UE, with at least one weak and one strong UE")
    excl = np.isin(labels, list(exclusive_classes))
    if not excl.any():
        raise ConfigError(f"exclusive_classes={list(exclusive_classes)} match no label")
    shares = np.asarray(shares, dtype=np.float64)
    out: list[np.ndarray] = [np.empty(0, np.int64)] * len(shares)
    for group, mask in ((weak, excl), (~weak, ~excl)):
        members = np.flatnonzero(group)
        pieces = iid(np.flatnonzero(mask), shares[members], rng)
        base = np.flatnonzero(mask)
        for k, piece in zip(members, pieces, strict=True):
            out[k] = np.sort(base[piece])
    return out
