"""Which samples each node holds and how its generators are seeded, from [training] alone: every node derives
the same split, the same IID shards and the same seeds without talking (no torch here, so a UE that only runs
the encoder forward, testbed/node/encoder_ue.py, gets exactly the shard and the batches the torch UE would)."""

from __future__ import annotations

import numpy as np

from testbed.learning.partition import iid
from testbed.learning.sources import load_subset, split_indices
from testbed.learning.spec import TrainingSpec

# Seed streams derived from [training] seed.
SPLIT, PARTITION, MODEL, BS, UE = 0, 1, 2, 3, 4


def shard_indices(
    t: TrainingSpec, labels: np.ndarray, num_classes: int, num_shards: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """(``num_shards`` IID shards, the BS's test split) as indices into the whole data set's ``labels``."""
    train, test = split_indices(labels, num_classes, t.test_fraction, np.random.default_rng([t.seed, SPLIT]))
    parts = iid(labels[train], [1.0] * num_shards, np.random.default_rng([t.seed, PARTITION]))
    return [train[p] for p in parts], test


def load_shard(t: TrainingSpec, shard: int) -> tuple[np.ndarray, np.ndarray, float, int]:
    """UE ``shard``'s samples of [training]'s data set as it stores them: (pixels (M, ...), labels (M,), the
    pixels' full-scale value, the set's number of classes). Reads the set once and keeps only the shard."""
    classes: list[int] = []

    def select(labels: np.ndarray) -> np.ndarray:
        classes.append(int(labels.max()) + 1)
        return shard_indices(t, labels, classes[0], t.num_shards)[0][shard]

    pixels, labels, max_value = load_subset(t.dataset, select)
    return pixels, labels, max_value, classes[0]


def model_seed(t: TrainingSpec) -> int:
    return t.seed * 1000 + MODEL


def bs_seed(t: TrainingSpec) -> int:
    return t.seed * 1000 + BS


def ue_seed(t: TrainingSpec, shard: int) -> int:
    """The seed of UE ``shard``'s generator (its batches; with torch also its local channel noise)."""
    return t.seed * 1000 + UE * 100 + shard
