"""The numpy encoder forward equals torch's Encoder within float32 tolerance, from the broadcast's bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from testbed.errors import LearningError
from testbed.learning import wire
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import CodecConfig, num_parameters, parameter_shapes
from testbed.learning.encoder_np import NumpyEncoder
from testbed.learning.spec import TrainingSpec

CONFIGS = {
    "mnist": TrainingSpec(dataset="mnist").codec_config(28, 10),  # the default scenario's codec
    "digits": TrainingSpec(dataset="digits").codec_config(8, 10),
    "12px": CodecConfig(image_size_px=12, num_symbols=8, encoder_channels=(3, 5)),  # 3x3 maps pooled to 3x3
    "side-info+recon": CodecConfig(image_size_px=16, snr_side_info=True, recon_weight=0.5),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_parameter_shapes_are_the_torch_models(name):
    cfg = CONFIGS[name]
    model = SemanticCodec(cfg, torch.Generator().manual_seed(1))
    assert {n: tuple(t.shape) for n, t in model.state_dict().items()} == parameter_shapes(cfg)
    assert list(model.state_dict()) == list(parameter_shapes(cfg))  # the broadcast's order
    assert num_parameters(cfg) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", CONFIGS)
def test_numpy_forward_equals_torch_from_the_broadcast(name):
    cfg = CONFIGS[name]
    model = SemanticCodec(cfg, torch.Generator().manual_seed(7))
    side = cfg.image_size_px
    images = torch.rand(40, 1, side, side, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model.encoder(images).numpy()
    encoder = NumpyEncoder(cfg)
    msg = encoder.load_broadcast(wire.encode_model(model, 4, {"ue-1": (10, 20)}), round_index=4)
    got = encoder(images.numpy())
    assert got.dtype == np.complex64 and got.shape == expected.shape == (40, cfg.num_symbols)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6)
    assert dict(msg.raw_requests) == {"ue-1": (10, 20)} and msg.round_index == 4


def test_a_broadcast_for_another_codec_is_refused():
    small, big = CONFIGS["digits"], CONFIGS["mnist"]
    data = wire.encode_model(SemanticCodec(small, torch.Generator().manual_seed(0)), 0, {})
    with pytest.raises(LearningError, match="model broadcast"):
        NumpyEncoder(big).load_broadcast(data)
    with pytest.raises(LearningError, match="encoder weights"):
        NumpyEncoder(big).load({"features.0.weight": np.zeros((1, 1, 5, 5), np.float32)})


def test_before_any_broadcast_the_encoder_runs_on_zeros():
    cfg = CONFIGS["digits"]
    out = NumpyEncoder(cfg)(np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32))
    assert out.shape == (4, cfg.num_symbols) and not out.any()
