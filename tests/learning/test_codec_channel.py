"""Codec and channel: power constraint, noise statistics, seeded init, gradients through the channel."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import ConfigError, LearningError
from testbed.learning.channel import AwgnChannel, noise_variance
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import CodecConfig, compute_fractions, forward_macs

TINY = CodecConfig(image_size_px=8, num_symbols=8, decoder_hidden=16)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_encoder_output_has_unit_power_per_image(batch: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    model = SemanticCodec(TINY, g)
    images = torch.rand((batch, 1, 8, 8), generator=g)
    x = model.encoder(images)
    assert x.dtype == torch.complex64 and x.shape == (batch, 8)
    torch.testing.assert_close(x.abs().pow(2).mean(dim=1), torch.ones(batch))


def test_awgn_noise_variance_matches_snr() -> None:
    ch = AwgnChannel(3.0, torch.Generator().manual_seed(1))
    zeros = torch.zeros((4000, 64), dtype=torch.complex64)
    received, n0 = ch.transmit(zeros)
    assert n0 == pytest.approx(10 ** (-0.3))
    assert float(received.abs().pow(2).mean()) == pytest.approx(n0, rel=0.02)


def test_channel_refuses_real_symbols() -> None:
    with pytest.raises(LearningError, match="complex"):
        AwgnChannel(10.0, torch.Generator()).transmit(torch.zeros(2, 4))
    with pytest.raises(LearningError):
        noise_variance(math.inf)


def test_init_is_seeded_and_gradient_reaches_encoder_through_channel() -> None:
    a = SemanticCodec(TINY, torch.Generator().manual_seed(5))
    b = SemanticCodec(TINY, torch.Generator().manual_seed(5))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    g = torch.Generator().manual_seed(2)
    loss = a.loss(torch.rand((4, 1, 8, 8), generator=g), torch.tensor([0, 1, 2, 3]), AwgnChannel(5.0, g))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in a.parameters())
    assert float(a.encoder.project.weight.grad.abs().sum()) > 0


def test_reconstruction_head_adds_loss() -> None:
    cfg = CodecConfig(image_size_px=8, num_symbols=8, decoder_hidden=16, recon_weight=1.0)
    model = SemanticCodec(cfg, torch.Generator().manual_seed(0))
    received = torch.zeros((2, 8), dtype=torch.complex64)
    images = torch.ones((2, 1, 8, 8))
    labels = torch.tensor([1, 2])
    with torch.no_grad():
        with_images = model.decoder_loss(received, 0.1, labels, images)
        without = model.decoder_loss(received, 0.1, labels)
    assert float(with_images) > float(without)


def test_snr_side_info_changes_the_decoder_output_only_when_enabled() -> None:
    received = torch.randn((3, 8), dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    for side_info in (False, True):
        cfg = CodecConfig(image_size_px=8, num_symbols=8, decoder_hidden=16, snr_side_info=side_info)
        model = SemanticCodec(cfg, torch.Generator().manual_seed(1))
        with torch.no_grad():
            low, high = model.decoder(received, 1.0)[0], model.decoder(received, 0.01)[0]
        assert torch.equal(low, high) != side_info


def test_macs_and_fractions() -> None:
    enc, dec = forward_macs(CodecConfig())
    assert enc == 14 * 14 * 8 * 25 + 7 * 7 * 16 * 8 * 9 + 16 * 16 * 32
    assert dec == 32 * 128 + 128 * 128 + 128 * 10
    assert forward_macs(CodecConfig(snr_side_info=True))[1] == dec + 128
    f_enc, f_dec = compute_fractions(CodecConfig())
    assert 0 < f_enc < 1 / 3 and 0 < f_dec < 1


def test_bad_codec_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="num_symbols"):
        CodecConfig(num_symbols=0)
