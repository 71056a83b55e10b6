"""The codec alone, trained centrally through AWGN at a fixed SNR: its accuracy ceiling per SNR.

Adam (Kingma and Ba 2015) with a cosine learning-rate decay over ``steps`` minibatches; one seeded
generator drives init, batches and channel noise; the held-out split is evaluated at the training SNR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from testbed.learning.channel import AwgnChannel
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import CodecConfig
from testbed.learning.data import ImageDataset
from testbed.learning.evaluate import evaluate
from testbed.learning.modes import draw_batch


@dataclass(frozen=True)
class CodecBenchResult:
    snr_db: float
    steps: int
    test_accuracy: float
    test_loss: float


def train_codec(
    cfg: CodecConfig,
    train: ImageDataset,
    test: ImageDataset,
    snr_db: float,
    *,
    steps: int = 2000,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> CodecBenchResult:
    """Train phi and theta together at ``snr_db`` and report held-out accuracy at the same SNR."""
    generator = torch.Generator().manual_seed(seed)
    model = SemanticCodec(cfg, generator)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * s / steps)))
    channel = AwgnChannel(snr_db, generator)
    for _ in range(steps):
        idx = draw_batch(len(train), batch_size, generator)
        opt.zero_grad()
        model.loss(train.images[idx], train.labels[idx], channel).backward()
        opt.step()
        schedule.step()
    accuracy, loss = evaluate(model, test, [snr_db], seed + 1)
    return CodecBenchResult(snr_db, steps, accuracy, loss)
