"""Data loaders (offline) and the three partitions."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import ConfigError, LearningError
from testbed.learning import partition
from testbed.learning.data import ImageDataset, load_dataset, load_folder, train_test_split


def test_digits_load_and_stratified_split(rng: np.random.Generator) -> None:
    data = load_dataset("digits")
    assert data.images.shape == (1797, 1, 8, 8) and data.num_classes == 10
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0
    train, test = train_test_split(data, 0.2, rng)
    assert len(train) + len(test) == len(data)
    counts = np.bincount(test.labels.numpy(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of ~180 per class


def test_folder_loader_concatenates_shards(tmp_path, rng: np.random.Generator) -> None:
    imgs = rng.integers(0, 256, size=(7, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs[:4], labels=np.array([0, 1, 2, 1]))
    np.savez(tmp_path / "b.npz", images=imgs[4:], labels=np.array([2, 0, 1]))
    data = load_folder(tmp_path)
    assert data.images.shape == (7, 1, 6, 6) and data.num_classes == 3
    np.testing.assert_allclose(data.images[5, 0].numpy(), imgs[5] / 255.0, rtol=1e-6)
    assert load_dataset(f"folder:{tmp_path}").labels.tolist() == [0, 1, 2, 1, 2, 0, 1]


def test_folder_loader_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no \\*.npz"):
        load_folder(tmp_path)
    np.savez(tmp_path / "x.npz", pixels=np.zeros((2, 4, 4)))
    with pytest.raises(ConfigError, match="'images' and 'labels'"):
        load_folder(tmp_path)
    with pytest.raises(ConfigError, match="unknown data set"):
        load_dataset("imagenet")


def test_dataset_validates_shapes() -> None:
    with pytest.raises(LearningError, match="float32"):
        ImageDataset(torch.zeros((2, 1, 4, 4), dtype=torch.float64), torch.zeros(2, dtype=torch.int64), 2)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(10, 300), shares=st.lists(st.floats(0.1, 5.0), min_size=1, max_size=8), seed=st.integers(0, 99))
def test_iid_and_dirichlet_cover_every_sample_once(n: int, shares: list[float], seed: int) -> None:
    labels = np.random.default_rng(seed).integers(0, 5, n)
    for parts in (
        partition.iid(labels, shares, np.random.default_rng(seed)),
        partition.dirichlet(labels, shares, 0.3, np.random.default_rng(seed)),
    ):
        assert len(parts) == len(shares)
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def test_iid_follows_shares(rng: np.random.Generator) -> None:
    parts = partition.iid(np.zeros(100, dtype=np.int64), [1, 1, 2], rng)
    assert [len(p) for p in parts] == [25, 25, 50]


def test_weak_exclusive_keeps_classes_at_weak_ues(rng: np.random.Generator) -> None:
    labels = np.repeat(np.arange(10), 20)
    weak = [True, True, False, False, False]
    parts = partition.weak_exclusive(labels, [1] * 5, weak, [7, 8, 9], rng)
    for p, w in zip(parts, weak, strict=True):
        assert set(labels[p]) <= ({7, 8, 9} if w else set(range(7)))
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(200))
    with pytest.raises(ConfigError):
        partition.weak_exclusive(labels, [1, 1], [True, True], [9], rng)
