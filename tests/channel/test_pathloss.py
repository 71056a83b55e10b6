import numpy as np
import pytest

from testbed.channel import PathLoss, path_loss_db
from testbed.errors import ChannelError


def test_free_space_loss_at_one_metre_2_4_ghz():
    # Friis: 20 log10(4 pi f / c) = 40.05 dB at 2.4 GHz and 1 m
    assert path_loss_db(1.0, 2.4e9) == pytest.approx(40.05, abs=0.01)


def test_loss_grows_10n_db_per_decade():
    base = path_loss_db(1.0, 915e6, exponent=3.0)
    assert path_loss_db(10.0, 915e6, exponent=3.0) == pytest.approx(base + 30.0)
    np.testing.assert_allclose(path_loss_db(np.array([1.0, 100.0]), 915e6, 3.0), [base, base + 60.0])


def test_model_scales_the_amplitude(rng):
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    model = PathLoss(distance_m=20.0, frequency_hz=2.4e9)
    y = model(x)
    assert 10 * np.log10(np.sum(np.abs(x) ** 2) / np.sum(np.abs(y) ** 2)) == pytest.approx(model.loss_db, abs=1e-3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: path_loss_db(0.0, 2.4e9),
        lambda: path_loss_db(np.array([1.0, -1.0]), 2.4e9),
        lambda: path_loss_db(1.0, 0.0),
        lambda: PathLoss(5.0, 2.4e9, reference_distance_m=0.0),
    ],
)
def test_impossible_parameters_raise(make):
    with pytest.raises(ChannelError):
        make()
