import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from testbed.errors import LinkError
from testbed.link.compress import ErrorFeedback, Float16Codec, Int8Codec, measure

finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=50, deadline=None)
@given(x=arrays(np.float32, array_shapes(max_dims=3, max_side=40), elements=finite), block=st.integers(1, 300))
def test_int8_error_is_within_half_a_step_of_its_block(x, block):
    codec = Int8Codec(block=block)
    y = codec.decode(codec.encode(x))
    assert y.shape == x.shape and y.dtype == np.float32
    flat = np.zeros(-(-x.size // block) * block, np.float32)
    flat[: x.size] = x.ravel()
    step = np.repeat(np.abs(flat.reshape(-1, block)).max(axis=1) / 127, block)[: x.size]
    assert np.all(np.abs(y.ravel() - x.ravel()) <= step / 2 * (1 + 1e-5) + 1e-30)


@settings(max_examples=50, deadline=None)
@given(x=arrays(np.float32, array_shapes(max_dims=2, max_side=50), elements=finite))
def test_float16_relative_error(x):
    y = Float16Codec().decode(Float16Codec().encode(x))
    assert y.shape == x.shape
    assert np.all(np.abs(y - x) <= np.abs(x) * 2.0**-11 + 2.0**-24)


def test_sizes_are_measured(rng):
    g = rng.standard_normal(10_000).astype(np.float32)
    f16, i8 = measure(Float16Codec(), g), measure(Int8Codec(block=256), g)
    assert f16.coded_bytes == 20_000 + 9 and f16.ratio == pytest.approx(2.0, rel=1e-3)
    assert i8.coded_bytes == 10_000 + 4 * 40 + 9
    assert f16.relative_rms_error < 1e-3 < i8.relative_rms_error < 2e-2


def test_error_feedback_keeps_the_running_sum_exact_to_one_step(rng):
    grads = [rng.standard_normal(500).astype(np.float32) for _ in range(50)]
    ef, plain = ErrorFeedback(Int8Codec(block=64)), Int8Codec(block=64)
    sent_ef = sum(ef.decode(ef.encode(g)) for g in grads)
    sent_plain = sum(plain.decode(plain.encode(g)) for g in grads)
    truth = sum(grads)
    # with feedback the running sum is off by only the last residual; without, errors add up
    assert np.allclose(sent_ef + ef.residual, truth, atol=1e-4)
    assert np.abs(sent_ef - truth).max() < np.abs(sent_plain - truth).max() / 2
    with pytest.raises(LinkError, match="one ErrorFeedback per array"):
        ef.encode(np.zeros(3, np.float32))


def test_bad_input_is_refused():
    with pytest.raises(LinkError, match="NaN/inf"):
        Int8Codec().encode(np.array([1.0, np.nan], np.float32))
    with pytest.raises(LinkError, match="float arrays"):
        Float16Codec().encode(np.arange(3))
    blob = Int8Codec().encode(np.ones(10, np.float32))
    with pytest.raises(LinkError, match="needs"):
        Int8Codec().decode(blob[:-1])
    with pytest.raises(LinkError, match="not a codec-1"):
        Float16Codec().decode(blob)
