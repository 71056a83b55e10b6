"""Distributed local training as a pure function, batched across UEs.

A UE's round of distributed work (``LocalUe.distributed``) is ``steps`` SGD steps from the broadcast model on
minibatches through an AWGN channel. Everything random in it (the batch indices, the channel noise) is drawn
from the UE's own generator before any arithmetic, in the order the steps use it, so what remains is a pure
function of tensors: a ``LocalJob``. ``train_local`` runs many such jobs at once with ``torch.func``: one
``vmap`` of ``grad`` over the UEs' stacked parameters per step, for every group of jobs with equal shapes
(same steps, batch size and step size), in chunks of at most ``CHUNK_SAMPLES`` samples per step. The chunking
depends only on the jobs, never on who runs them, so an executor that sends chunks elsewhere (Ray,
testbed/experiment/executor.py) computes bit for bit what the embedded one does.

Batching changes the order of floating-point sums (a vmapped convolution runs as one grouped convolution), so
a job's result matches a plain per-UE ``torch.optim.SGD`` loop within float32 rounding, not bit for bit.

``run_local`` is where a UE's job is computed: by ``train_local`` at once, or, inside ``deferring(hook)``, by
the hook (an executor that gathers one round's jobs and batches them).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from testbed.errors import LearningError
from testbed.learning.codec import SemanticCodec

#: Samples per step a chunk of jobs holds at most (1000 UEs of 4 samples: one chunk of 256 UEs per 1024 rows);
#: bounds a chunk's activations to a few MB for the default codec.
CHUNK_SAMPLES = 1024

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class LocalJob:
    """One UE's distributed round, every random draw made.

    params : the starting model, name -> tensor (the broadcast, shared by the UEs of a round). images :
    (steps, b, 1, H, W) float32, the minibatch of each step; labels : (steps, b) int64; noise : (steps, b, k, 2)
    float32 standard normal, the channel noise of each step (real and imaginary parts); noise_scale :
    sqrt(N0 / 2) of the UE's channel; noise_var : N0; lr : the SGD step.
    """

    params: Mapping[str, torch.Tensor]
    images: torch.Tensor
    labels: torch.Tensor
    noise: torch.Tensor
    noise_scale: float
    noise_var: float
    lr: float

    @property
    def shape_key(self) -> tuple[int, ...]:
        """Jobs with equal keys can share one vmap: (steps, batch size, image side, symbols)."""
        return (*self.images.shape[:2], self.images.shape[-1], self.noise.shape[2])


class _Loss(nn.Module):
    """The codec's task loss with given noise: the function ``torch.func`` differentiates."""

    def __init__(self, codec: SemanticCodec) -> None:
        super().__init__()
        self.codec = codec

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor, noise: torch.Tensor, scale: torch.Tensor, noise_var: float
    ) -> torch.Tensor:
        symbols = self.codec.encoder(images)
        received = symbols + scale * torch.view_as_complex(noise)
        return self.codec.decoder_loss(received, noise_var, labels, images)


def train_local(codec: SemanticCodec, jobs: Sequence[LocalJob]) -> list[Tensors]:
    """Each job's pseudo-gradient (w_start - w_end) / lr, name -> tensor like ``params``; ``codec`` gives the
    architecture (its own weights are not used)."""
    out: list[Tensors | None] = [None] * len(jobs)
    for indices in chunks(codec, jobs):
        for i, tensors in zip(indices, train_chunk(codec, [jobs[i] for i in indices]), strict=True):
            out[i] = tensors
    return out  # type: ignore[return-value]  # every index is in exactly one chunk


def chunks(codec: SemanticCodec, jobs: Sequence[LocalJob]) -> list[list[int]]:
    """Indices of ``jobs`` in the chunks ``train_local`` computes together (each by ``train_chunk``): grouped by
    shape and step size (and N0 when the decoder sees it), in first-seen order, at most ``CHUNK_SAMPLES``
    samples per step each."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        side = job.noise_var if codec.cfg.snr_side_info else None
        groups.setdefault((job.shape_key, job.lr, side), []).append(i)
    out = []
    for key, members in groups.items():
        per_chunk = max(1, CHUNK_SAMPLES // max(1, int(key[0][1])))  # type: ignore[index]
        out += [members[s : s + per_chunk] for s in range(0, len(members), per_chunk)]
    return out


def train_chunk(codec: SemanticCodec, jobs: Sequence[LocalJob]) -> list[Tensors]:
    """``steps`` SGD steps of every job in one vmap per step; jobs share shapes, lr (and N0 if the decoder
    sees it: else N0 acts only through each job's noise scale)."""
    first = jobs[0]
    names = list(first.params)
    if any(list(j.params) != names for j in jobs):
        raise LearningError("the jobs of a chunk must train the same parameters")
    from torch.func import functional_call, grad, vmap  # loads torch._dynamo (about 70 MB): only when batching

    lr, noise_var = first.lr, first.noise_var
    start = {n: torch.stack([j.params[n].detach() for j in jobs]) for n in names}  # (U, *shape) each
    images = torch.stack([j.images for j in jobs])  # (U, steps, b, 1, H, W)
    labels = torch.stack([j.labels for j in jobs])  # (U, steps, b)
    noise = torch.stack([j.noise for j in jobs])  # (U, steps, b, k, 2)
    scale = torch.tensor([j.noise_scale for j in jobs], dtype=torch.float32)  # (U,)
    module = _Loss(codec)

    def loss(params: Tensors, x: torch.Tensor, y: torch.Tensor, n: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return functional_call(module, {f"codec.{k}": v for k, v in params.items()}, (x, y, n, s, noise_var))

    step_grads = vmap(grad(loss))
    params = start
    for step in range(images.shape[1]):
        grads = step_grads(params, images[:, step], labels[:, step], noise[:, step], scale)
        params = {n: params[n].add(grads[n], alpha=-lr) for n in names}  # torch.optim.SGD's update, no momentum
    return [{n: (start[n][u] - params[n][u]) / lr for n in names} for u in range(len(jobs))]


def noise_scale(noise_var: float) -> float:
    """sqrt(N0 / 2): the standard deviation of each of the noise's real and imaginary parts."""
    return math.sqrt(noise_var / 2.0)


# --- where a job is computed ------------------------------------------------------------------------------
Hook = Callable[[SemanticCodec, LocalJob], Tensors]
_hook: contextvars.ContextVar[Hook | None] = contextvars.ContextVar("local_training_hook", default=None)


def train_one(codec: SemanticCodec, job: LocalJob) -> Tensors:
    """One job's pseudo-gradient by plain autograd on a copy of the codec: the same SGD steps as
    ``train_chunk`` (equal within float32 rounding) without torch.func, so a UE daemon, which trains alone,
    does not load torch._dynamo (docs/nodes.md, "Memory")."""
    model = copy.deepcopy(codec)
    model.load_state_dict(dict(job.params), strict=False)
    params = {n: p for n, p in model.named_parameters() if n in job.params}
    loss = _Loss(model)
    scale = torch.tensor(job.noise_scale, dtype=torch.float32)
    for step in range(job.images.shape[0]):
        value = loss(job.images[step], job.labels[step], job.noise[step], scale, job.noise_var)
        grads = torch.autograd.grad(value, list(params.values()))
        with torch.no_grad():
            for p, g in zip(params.values(), grads, strict=True):
                p.add_(g, alpha=-job.lr)
    return {n: (job.params[n].detach() - p.detach()) / job.lr for n, p in params.items()}


def run_local(codec: SemanticCodec, job: LocalJob) -> Tensors:
    """The job's pseudo-gradient: from the hook of an enclosing ``deferring`` (an executor batching a round's
    jobs), else computed now, alone."""
    hook = _hook.get()
    return hook(codec, job) if hook is not None else train_one(codec, job)


@contextlib.contextmanager
def deferring(hook: Hook) -> Iterator[None]:
    """Within the block (this thread's context), ``run_local`` hands its jobs to ``hook``."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)
