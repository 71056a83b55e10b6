"""Semantic codec for task-oriented image transmission: encoder phi on the UE, decoder theta at the BS.

phi maps an image to ``k`` complex channel symbols with unit average power per image (power constraint of
deep joint source-channel coding, Bourtsoulatze et al., IEEE TCCN 2019, eq. 2). theta maps the received
symbols and the channel's noise variance to class scores and, optionally, a reconstruction of the image.
The encoder is kept light (it runs on a Pi-class UE); the decoder carries most of the parameters (BS).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from testbed.learning.channel import SymbolChannel
from testbed.learning.codec_config import PIXEL_MEAN, PIXEL_STD, CodecConfig, pooled_side


class Encoder(nn.Module):
    """phi: (batch, 1, H, W) float32 in [0, 1] -> (batch, k) complex64 with mean |x|^2 = 1 per image."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        c1, c2 = cfg.encoder_channels
        pooled = pooled_side(cfg)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(pooled),
            nn.Flatten(),
        )
        self.project = nn.Linear(c2 * pooled * pooled, 2 * cfg.num_symbols)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.project(self.features((images - PIXEL_MEAN) / PIXEL_STD))  # (batch, 2k) real
        z = z.view(z.shape[0], -1, 2).contiguous()
        x = torch.view_as_complex(z)  # (batch, k)
        power = x.abs().pow(2).mean(dim=1, keepdim=True)
        return x / torch.sqrt(power + 1e-12)


class Decoder(nn.Module):
    """theta: received (batch, k) complex64 [+ N0 if snr_side_info] -> class logits (batch, C) [and images]."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        h = cfg.decoder_hidden
        self.snr_side_info = cfg.snr_side_info
        n_in = 2 * cfg.num_symbols + (1 if cfg.snr_side_info else 0)
        self.body = nn.Sequential(nn.Linear(n_in, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.classify = nn.Linear(h, cfg.num_classes)
        side = cfg.image_size_px
        self.reconstruct = nn.Linear(h, side * side) if cfg.recon_weight > 0 else None
        self.side = side

    def forward(self, received: torch.Tensor, noise_var: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = torch.view_as_real(received).flatten(1)  # (batch, 2k)
        if self.snr_side_info:
            snr_feature = torch.full((feats.shape[0], 1), -math.log10(noise_var), dtype=feats.dtype)
            feats = torch.cat([feats, snr_feature], dim=1)  # (batch, 2k + 1)
        h = self.body(feats)
        recon = None
        if self.reconstruct is not None:
            recon = torch.sigmoid(self.reconstruct(h)).view(-1, 1, self.side, self.side)
        return self.classify(h), recon


class SemanticCodec(nn.Module):
    """The whole model the BS broadcasts: ``encoder`` (phi) and ``decoder`` (theta)."""

    def __init__(self, cfg: CodecConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        _init_parameters(self, generator)

    def loss(
        self, images: torch.Tensor, labels: torch.Tensor, channel: SymbolChannel, *, reduction: str = "mean"
    ) -> torch.Tensor:
        """Task loss of ``images`` (batch, 1, H, W) sent through ``channel``: cross-entropy (+ weighted MSE)."""
        received, noise_var = channel.transmit(self.encoder(images))
        return self.decoder_loss(received, noise_var, labels, images, reduction=reduction)

    def decoder_loss(
        self,
        received: torch.Tensor,
        noise_var: float,
        labels: torch.Tensor,
        images: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
    ) -> torch.Tensor:
        """Loss of theta on received symbols (batch, k) complex64; reconstruction needs ``images``."""
        logits, recon = self.decoder(received, noise_var)
        loss = nn.functional.cross_entropy(logits, labels, reduction="none")
        if recon is not None and images is not None:
            loss = loss + self.cfg.recon_weight * (recon - images).pow(2).flatten(1).mean(dim=1)
        return loss.mean() if reduction == "mean" else loss.sum()

    @torch.no_grad()
    def predict(self, images: torch.Tensor, channel: SymbolChannel) -> torch.Tensor:
        """Predicted class (batch,) int64 of images sent through ``channel``."""
        received, noise_var = channel.transmit(self.encoder(images))
        return self.decoder(received, noise_var)[0].argmax(dim=1)


def _init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """Re-draw every weight from ``generator`` (He-uniform, PyTorch's default bounds) so init is seeded."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                fan_in = module.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
