import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.channel import (
    Awgn,
    Chain,
    ChannelModel,
    DcOffset,
    FrequencyOffset,
    IqImbalance,
    Multipath,
    PathLoss,
    PhaseNoise,
    SamplingClockOffset,
    TimingOffset,
)
from testbed.errors import ChannelError


def make_chain(seed: int) -> Chain:
    rng = np.random.default_rng(seed)
    return Chain(
        [
            PathLoss(3.0, 2.4e9),
            Multipath(2.0, rng, k_factor_db=3.0),
            TimingOffset(2.5),
            FrequencyOffset(1000.0, 2.5e6),
            SamplingClockOffset(20.0),
            PhaseNoise(100.0, 2.5e6, rng),
            IqImbalance(0.2, 1.0),
            DcOffset(0.01),
            Awgn(20.0, rng, signal_power=1e-4),
        ]
    )


def test_chain_applies_models_in_order(rng):
    x = (rng.standard_normal(64) + 1j * rng.standard_normal(64)).astype(np.complex64)
    y = Chain([PathLoss(1.0, 2.4e9), DcOffset(1.0)])(x)
    np.testing.assert_allclose(y, x * 10 ** (-PathLoss(1.0, 2.4e9).loss_db / 20) + 1.0, rtol=1e-5)
    assert isinstance(make_chain(0), ChannelModel)


def test_same_seed_same_output(rng):
    x = (rng.standard_normal(5000) + 1j * rng.standard_normal(5000)).astype(np.complex64)
    a, b = make_chain(42), make_chain(42)
    for _ in range(2):
        np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(make_chain(43)(x), make_chain(42)(x))


def test_chain_refuses_non_models():
    with pytest.raises(ChannelError):
        Chain([DcOffset(0.0), 3])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_any_block_gives_finite_complex64(n, seed):
    x = np.random.default_rng(seed).standard_normal(2 * n).astype(np.float32).view(np.complex64)
    y = make_chain(seed)(x)
    assert y.dtype == np.complex64 and y.ndim == 1 and np.all(np.isfinite(y))
