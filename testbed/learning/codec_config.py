"""The semantic codec's sizes without torch: its config, its layers' parameter shapes, its multiply-accumulates.

What a node needs to plan or price the codec, or to run its encoder forward in numpy
(testbed/learning/encoder_np.py), without importing torch; the torch modules are testbed/learning/codec.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from testbed.errors import ConfigError

# Input standardisation with the customary MNIST pixel statistics (mean 0.1307, std 0.3081 on [0, 1]).
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081


@dataclass(frozen=True)
class CodecConfig:
    """Codec sizes.

    image_size_px : side of the square grey image (28 for MNIST, 8 for the sklearn digits).
    num_symbols : k, complex channel symbols per image (bandwidth ratio k / image_size_px^2).
    num_classes : class-score outputs.
    encoder_channels : conv feature maps of the two encoder layers.
    decoder_hidden : width of the decoder's two hidden layers.
    recon_weight : weight of the image-reconstruction loss; 0 disables the reconstruction head.
    snr_side_info : feed the decoder the channel's SNR as an extra input. Off by default: when data and
        link quality are correlated (weak UEs owning classes), the decoder learns "low SNR => those
        classes" and fails on the same classes over a good link (docs/learning.md, measured).
    """

    image_size_px: int = 28
    num_symbols: int = 16
    num_classes: int = 10
    encoder_channels: tuple[int, int] = (8, 16)
    decoder_hidden: int = 128
    recon_weight: float = 0.0
    snr_side_info: bool = False

    def __post_init__(self) -> None:
        if self.image_size_px < 4:
            raise ConfigError(f"image_size_px={self.image_size_px} must be >= 4")
        if not 1 <= self.num_symbols <= 4096:
            raise ConfigError(f"num_symbols={self.num_symbols} must be in 1..4096")
        if self.num_classes < 2 or self.decoder_hidden < 1 or min(self.encoder_channels) < 1:
            raise ConfigError(f"codec sizes must be positive with >= 2 classes, got {self}")
        if not (math.isfinite(self.recon_weight) and self.recon_weight >= 0):
            raise ConfigError(f"recon_weight={self.recon_weight!r} must be finite and >= 0")


# The encoder's layers (testbed/learning/codec.py's Encoder): conv 5x5 stride 2 padding 2, ReLU, conv 3x3 stride 2
# padding 1, ReLU, adaptive average pooling to at most 4x4, linear to 2k reals.
CONV1_KERNEL, CONV1_STRIDE, CONV1_PADDING = 5, 2, 2
CONV2_KERNEL, CONV2_STRIDE, CONV2_PADDING = 3, 2, 1


def pooled_side(cfg: CodecConfig) -> int:
    """Side of the encoder's pooled feature maps."""
    return min(4, cfg.image_size_px // 4)


def parameter_shapes(cfg: CodecConfig) -> dict[str, tuple[int, ...]]:
    """SemanticCodec's state_dict names and shapes, in its order: what a model broadcast carries."""
    c1, c2 = cfg.encoder_channels
    p, h, k2 = pooled_side(cfg), cfg.decoder_hidden, 2 * cfg.num_symbols
    n_in = k2 + (1 if cfg.snr_side_info else 0)
    shapes = {
        "encoder.features.0.weight": (c1, 1, CONV1_KERNEL, CONV1_KERNEL),
        "encoder.features.0.bias": (c1,),
        "encoder.features.2.weight": (c2, c1, CONV2_KERNEL, CONV2_KERNEL),
        "encoder.features.2.bias": (c2,),
        "encoder.project.weight": (k2, c2 * p * p),
        "encoder.project.bias": (k2,),
        "decoder.body.0.weight": (h, n_in),
        "decoder.body.0.bias": (h,),
        "decoder.body.2.weight": (h, h),
        "decoder.body.2.bias": (h,),
        "decoder.classify.weight": (cfg.num_classes, h),
        "decoder.classify.bias": (cfg.num_classes,),
    }
    if cfg.recon_weight > 0:
        side = cfg.image_size_px
        shapes |= {"decoder.reconstruct.weight": (side * side, h), "decoder.reconstruct.bias": (side * side,)}
    return shapes


def num_parameters(cfg: CodecConfig) -> int:
    """Parameters of the whole codec (phi and theta)."""
    return sum(math.prod(s) for s in parameter_shapes(cfg).values())


def forward_macs(cfg: CodecConfig) -> tuple[int, int]:
    """Multiply-accumulates of one sample's forward pass: (encoder, decoder); from the layer shapes above."""
    c1, c2 = cfg.encoder_channels
    s = cfg.image_size_px
    o1 = (s + 2 * CONV1_PADDING - CONV1_KERNEL) // CONV1_STRIDE + 1
    o2 = (o1 + 2 * CONV2_PADDING - CONV2_KERNEL) // CONV2_STRIDE + 1
    pooled = pooled_side(cfg)
    enc = o1 * o1 * c1 * 25 + o2 * o2 * c2 * c1 * 9 + c2 * pooled * pooled * 2 * cfg.num_symbols
    h = cfg.decoder_hidden
    dec = (
        (2 * cfg.num_symbols + (1 if cfg.snr_side_info else 0)) * h
        + h * h
        + h * cfg.num_classes
        + (h * s * s if cfg.recon_weight > 0 else 0)
    )
    return enc, dec


TRAIN_MACS_PER_FORWARD_MAC = 3.0  # forward + backward ~ 3x forward (see compute_fractions)


def train_macs(cfg: CodecConfig) -> float:
    """Multiply-accumulates of one sample's training step (forward and backward, whole model): what a board's
    ``cycles_per_mac`` turns into its cycles per sample."""
    return TRAIN_MACS_PER_FORWARD_MAC * sum(forward_macs(cfg))


def compute_fractions(cfg: CodecConfig) -> tuple[float, float]:
    """Share of one full training step's cycles (forward + backward, ~3x forward MACs; Hobbhahn and
    Sevilla, "What's the backward-forward FLOP ratio", 2021) spent on (encoder forward only, decoder
    forward + backward only)."""
    enc, dec = forward_macs(cfg)
    return enc / (3.0 * (enc + dec)), dec / (enc + dec)
