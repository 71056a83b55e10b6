"""Image data sets as tensors (the arrays of testbed/learning/sources.py: which sets, their files), and the
held-out test split kept at the BS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from testbed.errors import LearningError
from testbed.learning.sources import load_arrays, load_folder_arrays, split_indices


@dataclass(frozen=True)
class ImageDataset:
    """images : (N, 1, H, W) float32 in [0, 1]; labels : (N,) int64 in 0..num_classes-1."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != 1 or self.images.dtype != torch.float32:
            raise LearningError(
                f"images must be (N, 1, H, W) float32, got {tuple(self.images.shape)} {self.images.dtype}"
            )
        if self.labels.shape != (self.images.shape[0],) or self.labels.dtype != torch.int64:
            raise LearningError(f"labels must be ({self.images.shape[0]},) int64, got {tuple(self.labels.shape)}")
        if len(self.labels) and not (0 <= int(self.labels.min()) and int(self.labels.max()) < self.num_classes):
            raise LearningError(f"labels must lie in 0..{self.num_classes - 1}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_size_px(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, indices: np.ndarray) -> ImageDataset:
        """The samples at ``indices`` (M,) int."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return ImageDataset(self.images[idx], self.labels[idx], self.num_classes)


def _dataset(images: np.ndarray, labels: np.ndarray) -> ImageDataset:
    x, y = torch.as_tensor(images), torch.as_tensor(labels)
    return ImageDataset(x, y, int(y.max()) + 1 if len(y) else 0)


def load_folder(path: Path) -> ImageDataset:
    """Concatenate the ``*.npz`` shards in ``path`` (sources.load_folder_arrays)."""
    return _dataset(*load_folder_arrays(path))


def load_dataset(name: str) -> ImageDataset:
    """``mnist``, ``digits`` or ``folder:<path>`` (sources.load_arrays; built-in sets are loaded once per process
    and share memory with their arrays: do not mutate)."""
    return _dataset(*load_arrays(name))


def train_test_split(
    data: ImageDataset, test_fraction: float, rng: np.random.Generator
) -> tuple[ImageDataset, ImageDataset]:
    """Stratified split: ``test_fraction`` of each class is held out at the BS for evaluation."""
    train_idx, test_idx = split_indices(data.labels.numpy(), data.num_classes, test_fraction, rng)
    return data.subset(train_idx), data.subset(test_idx)
