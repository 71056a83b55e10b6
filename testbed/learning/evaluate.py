"""Test accuracy at the BS: the held-out split sent through every UE's link in turn.

Test sample i travels over link ``i mod len(snrs_db)``, so the figure is the codec's accuracy averaged
over the deployment's links. The noise comes from a generator seeded afresh for every evaluation, so
every scheme and every round is judged on exactly the same noise and training randomness is untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from testbed.errors import LearningError
from testbed.learning.channel import AwgnChannel
from testbed.learning.codec import SemanticCodec
from testbed.learning.data import ImageDataset


def evaluate(model: SemanticCodec, test: ImageDataset, snrs_db: Sequence[float], seed: int) -> tuple[float, float]:
    """(accuracy in 0..1, mean task loss) of ``model`` on ``test``."""
    accuracy, loss, _ = evaluate_classes(model, test, snrs_db, seed)
    return accuracy, loss


@torch.no_grad()
def evaluate_classes(
    model: SemanticCodec, test: ImageDataset, snrs_db: Sequence[float], seed: int
) -> tuple[float, float, list[float | None]]:
    """(accuracy, mean task loss, accuracy per class: None for a class absent from ``test``), as ``evaluate``."""
    if not snrs_db or len(test) == 0:
        raise LearningError("evaluation needs a non-empty test set and at least one link SNR")
    generator = torch.Generator().manual_seed(seed)
    loss_sum = 0.0
    hits = torch.zeros(test.num_classes, dtype=torch.int64)
    for j, snr in enumerate(snrs_db):
        idx = torch.arange(j, len(test), len(snrs_db))
        if len(idx) == 0:
            continue
        images, labels = test.images[idx], test.labels[idx]
        received, noise_var = AwgnChannel(snr, generator).transmit(model.encoder(images))
        logits, _ = model.decoder(received, noise_var)
        hits += torch.bincount(labels[logits.argmax(dim=1) == labels], minlength=test.num_classes)
        loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
    counts = torch.bincount(test.labels, minlength=test.num_classes)
    per_class = [int(h) / int(n) if n else None for h, n in zip(hits, counts, strict=True)]
    return int(hits.sum()) / len(test), loss_sum / len(test), per_class
