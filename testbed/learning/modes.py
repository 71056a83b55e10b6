"""The work of each training mode: what a UE computes, and what the BS computes on what it received.

- distributed: the UE copies (phi, theta), runs ``steps`` SGD steps of ``batch_size`` through a simulated
  channel at its own SNR and returns the pseudo-gradient g_k = (w_start - w_end) / lr (the sum of its
  step gradients; for one step, exactly the gradient) with its sample count n_k.
- centralized-decoder: the UE runs phi forward on ``steps * batch_size`` samples and sends the clean symbols
  (``SentSymbols``) with the labels; the node cores carry them as analog OFDM frames, so the BS trains theta on
  the symbols the link actually delivered (``SymbolUpload``), with the receiver's noise variance (and, with
  split learning on, returns the gradient with respect to them: testbed/learning/split.py).
- centralized-full: the UE sends raw samples (all at once or in blocks); the BS trains phi and theta on
  them through a simulated channel at that UE's SNR.
``LocalUe`` is the in-process UE; the BS daemon reaches a remote UE through the same three calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from testbed.errors import ConfigError, LearningError
from testbed.learning.batch import LocalJob, noise_scale, run_local
from testbed.learning.channel import AwgnChannel, SymbolChannel
from testbed.learning.codec import SemanticCodec
from testbed.learning.data import ImageDataset
from testbed.learning.guards import Update
from testbed.learning.spec import LocalTraining


@dataclass(frozen=True)
class SentSymbols:
    """What a centralized-decoder UE sends: (M, k) complex64 encoder outputs, unit mean power per row, and
    their (M,) labels. No noise: the channel is the link's (analog frames), or ``through`` a simulated one."""

    source: str
    symbols: torch.Tensor
    labels: torch.Tensor
    split: Update | None = None  # split learning: the encoder gradient for last round's symbols (split.py)

    def through(self, channel: SymbolChannel) -> SymbolUpload:
        """What a BS would receive over ``channel`` (learning-only runs and tests; the nodes use the air)."""
        received, noise_var = channel.transmit(self.symbols)
        return SymbolUpload(self.source, received, noise_var, self.labels, self.split)


@dataclass(frozen=True)
class SymbolUpload:
    """What the BS received from a centralized-decoder UE: (M, k) complex64 symbols, N0, (M,) labels; with split
    learning, ``split`` = the UE's encoder gradient for the symbols it sent the round before (split.py)."""

    source: str
    received: torch.Tensor
    noise_var: float
    labels: torch.Tensor
    split: Update | None = None


@dataclass(frozen=True)
class RawShard:
    """Raw samples a UE uploaded and the SNR of its link (the encoder trained on them serves that link)."""

    data: ImageDataset
    snr_db: float


def draw_batch(n: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(min(n, batch_size),) int64 indices drawn without replacement."""
    if n < 1:
        raise LearningError("cannot draw a batch from an empty data set")
    return torch.randperm(n, generator=generator)[: min(n, batch_size)]


def sgd_step(model: torch.nn.Module, lr: float) -> None:
    """w <- w - lr * grad for every parameter with a gradient: torch.optim.SGD's step without momentum or weight
    decay, the same arithmetic (its single-tensor path on CPU), without an optimizer object: the first torch
    optimizer in a process imports torch._dynamo (72 MB of RSS here), which a small board's UE cannot spare."""
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)


def pseudo_gradient(start: SemanticCodec, end: SemanticCodec, lr: float) -> dict[str, torch.Tensor]:
    """(w_start - w_end) / lr per named parameter."""
    end_params = dict(end.named_parameters())
    return {n: (p.detach() - end_params[n].detach()) / lr for n, p in start.named_parameters()}


class LocalUe:
    """An in-process UE: its data, its generator (batches and channel noise) and its three mode calls.

    ``snr_db``: the SNR its local training simulates; the configured value until ``measured`` gives it the
    UE's own link measurement (each UE trains through its own link, not a fixed SNR)."""

    def __init__(self, name: str, data: ImageDataset, snr_db: float, generator: torch.Generator) -> None:
        if len(data) == 0:
            raise ConfigError(f"UE {name} holds no data; check the partition")
        self.name, self.data, self.snr_db, self.generator = name, data, float(snr_db), generator

    def measured(self, snr_db: float | None) -> None:
        """The UE's latest measured link SNR (None: nothing measured yet, the current value stays)."""
        if snr_db is not None and math.isfinite(snr_db):
            self.snr_db = float(snr_db)

    def channel(self, snr_offset_db: float) -> SymbolChannel:
        return AwgnChannel(self.snr_db + snr_offset_db, self.generator)

    def distributed(self, model: SemanticCodec, work: LocalTraining, snr_offset_db: float = 0.0) -> Update:
        """Train a copy of ``model`` locally; return g_k and n_k = local data size (the SGD steps run in
        testbed/learning/batch.py, batched with other UEs' when an executor gathers them)."""
        return Update(self.name, run_local(model, self.local_job(model, work, snr_offset_db)), len(self.data))

    def local_job(self, model: SemanticCodec, work: LocalTraining, snr_offset_db: float = 0.0) -> LocalJob:
        """This round's distributed work with its random draws made: per step a batch, then its channel noise,
        from the UE's generator in the order the steps use them."""
        channel = self.channel(snr_offset_db)
        k = model.cfg.num_symbols
        images, labels, noise = [], [], []
        for _ in range(work.steps):
            idx = draw_batch(len(self.data), work.batch_size, self.generator)
            images.append(self.data.images[idx])
            labels.append(self.data.labels[idx])
            noise.append(torch.randn((len(idx), k, 2), generator=self.generator, dtype=torch.float32))
        params = {n: p.detach() for n, p in model.named_parameters()}
        return LocalJob(params, torch.stack(images), torch.stack(labels), torch.stack(noise),
                        noise_scale(channel.noise_var), channel.noise_var, work.lr)  # fmt: skip

    def symbol_indices(self, work: LocalTraining) -> torch.Tensor:
        """(M,) int64: the ``steps`` batches a symbol upload encodes, drawn from the UE's generator."""
        return torch.cat([draw_batch(len(self.data), work.batch_size, self.generator) for _ in range(work.steps)])

    @torch.no_grad()
    def symbols(self, model: SemanticCodec, work: LocalTraining, idx: torch.Tensor | None = None) -> SentSymbols:
        """Encode ``steps`` batches (``idx``, else drawn now) with phi: the clean symbols to send, and their
        labels."""
        idx = self.symbol_indices(work) if idx is None else idx
        return SentSymbols(self.name, model.encoder(self.data.images[idx]), self.data.labels[idx])

    def raw(self, start: int, count: int) -> ImageDataset:
        """Samples ``start .. start+count-1`` of the local data, for upload."""
        return self.data.subset(torch.arange(start, min(start + count, len(self.data))).numpy())


def centralized_gradient(
    model: SemanticCodec,
    scratch: SemanticCodec,
    symbols: Sequence[SymbolUpload],
    raw: Sequence[RawShard],
    work: LocalTraining,
    generator: torch.Generator,
    *,
    symbol_grads: bool = False,
) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """(G_C, per symbol upload its symbol gradients): ``work.steps`` SGD steps at the BS over every centralized
    source; G_C as a pseudo-gradient.

    Step j takes batch j of each symbol upload (theta only) and a fresh batch of each raw shard (phi and
    theta, through AWGN at that UE's SNR). The encoder part is the mean over raw samples only, so it has
    the same scale as a distributed g_k; without raw shards it is zero and ``joint_gradient`` ignores it.
    An upload that lost analog frames has fewer rows: a step with no row left from any source is skipped.
    With ``symbol_grads`` (split learning), row i of upload u's (M, k) complex64 gradient is d l_i / d y_i:
    the gradient of symbol i's own loss at the decoder of the step that used it (before that step's update),
    in torch's convention for complex tensors (d l / d Re y + j d l / d Im y); else the list is empty.
    """
    if not symbols and not raw:
        raise LearningError("centralized_gradient needs symbol uploads or raw shards")
    scratch.load_state_dict(model.state_dict())
    channels = [AwgnChannel(shard.snr_db, generator) for shard in raw]
    b = work.batch_size
    grads: list[list[torch.Tensor]] = [[] for _ in symbols]
    for j in range(work.steps):
        scratch.zero_grad()
        total = torch.zeros(())
        n_sym = n_raw = 0
        inputs, losses = [], []
        for up in symbols:
            sl = slice(j * b, (j + 1) * b)
            received = up.received[sl].detach().requires_grad_(True) if symbol_grads else up.received[sl]
            loss = scratch.decoder_loss(received, up.noise_var, up.labels[sl], reduction="sum")
            inputs.append(received)
            losses.append(loss)
            total = total + loss
            n_sym += len(up.labels[sl])
        if symbol_grads and symbols:  # each symbol's loss reaches only its own row: one call gives them all
            for got, g in zip(grads, torch.autograd.grad(sum(losses), inputs, retain_graph=True), strict=True):
                got.append(g)
        for shard, channel in zip(raw, channels, strict=True):
            idx = draw_batch(len(shard.data), b, generator)
            total = total + scratch.loss(shard.data.images[idx], shard.data.labels[idx], channel, reduction="sum")
            n_raw += len(idx)
        if n_sym + n_raw == 0:
            continue
        (total / (n_sym + n_raw)).backward()
        if n_raw:
            for p in scratch.encoder.parameters():
                p.grad.mul_((n_sym + n_raw) / n_raw)
        sgd_step(scratch, work.lr)
    return pseudo_gradient(model, scratch, work.lr), [torch.cat(g) for g in grads] if symbol_grads else []
