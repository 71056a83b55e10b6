"""Split learning over the downlink: the encoder phi also learns from the centralized-decoder UEs' data.

Without it, a UE that sends semantic symbols trains only the decoder theta (modes.centralized_gradient), so
phi never sees the classes only that UE holds. With the option on (``[training] split_gradient``):

- round r: the UE encodes its batches x_r with phi_r and uploads the received symbols y_r (as without the
  option); it keeps the sample indices and phi_r (``PendingSymbols``), not the autograd graph, so that a
  checkpoint can hold them. The BS trains theta on y_r and takes, per symbol, g_i = d l_i / d y_i at the decoder
  of the step that used it (``centralized_gradient(..., symbol_grads=True)``).
- round r+1: g_r rides in the model broadcast as a per-UE section (wire.ModelMsg.symbol_grads, as raw_requests
  do); the UE back-propagates it through phi_r on x_r (``encoder_gradient``: the gradient of its mean loss over
  the M samples), and the result e_r rides in its round r+1 symbol upload (wire.SymbolsMsg.split). The BS
  screens e_r with the guards and joins it to phi's side of the joint update (``with_split_encoder``), weighted
  by the UE's sample count.

e_r is therefore one round stale: a gradient at phi_r applied to phi_{r+1}. A UE that is not sending symbols
in round r+1 drops its pending batch (its section is not broadcast). Cost: the broadcast grows by M x k complex64
(8 bytes each; 5 x 32 x 16 x 8 = 20 kB for the default scenario) per symbol UE, the upload by phi (float32, 38 kB),
and the UE's work by a forward and backward pass of phi over the previous round's M samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from testbed.errors import LearningError
from testbed.learning.aggregate import ENCODER_PREFIX
from testbed.learning.codec import Encoder
from testbed.learning.guards import Update


@dataclass(frozen=True)
class SymbolGradient:
    """The BS's d l_i / d y_i, (M, k) complex64, for the symbols a UE sent in round ``round_index``."""

    round_index: int
    grads: torch.Tensor


@dataclass(frozen=True)
class PendingSymbols:
    """What a UE keeps of its symbol upload of round ``round_index``: (M,) sample indices and phi_r."""

    round_index: int
    indices: torch.Tensor
    encoder: Mapping[str, torch.Tensor]

    def state(self) -> list:
        return [self.round_index, self.indices, dict(self.encoder)]

    @classmethod
    def from_state(cls, state: Sequence) -> PendingSymbols:
        return cls(int(state[0]), state[1], dict(state[2]))


def encoder_gradient(encoder: Encoder, images: torch.Tensor, grads: torch.Tensor) -> dict[str, torch.Tensor]:
    """d/d phi of the mean loss over the M symbols sent: (1/M) sum_i J_i^T g_i, at ``encoder``'s weights.

    images : (M, 1, H, W) float32, the samples the symbols encoded; grads : (M, k) complex64 from the BS.
    One gradient over all M samples, not the sum of the E batch gradients a distributed UE's pseudo-gradient
    adds up: those E gradients are taken at one stale point, not along a local trajectory, and their sum
    (E times larger) made training oscillate (docs/learning.md, "Split learning"). Returns
    ``encoder.<name>`` -> tensor.
    """
    k = encoder.project.out_features // 2
    if grads.shape != (images.shape[0], k) or grads.dtype != torch.complex64 or images.shape[0] == 0:
        raise LearningError(
            f"symbol gradient: expected ({images.shape[0]}, {k}) complex64 for the symbols sent, got "
            f"{tuple(grads.shape)} {grads.dtype}"
        )
    encoder.zero_grad(set_to_none=True)
    encoder(images).backward(grads / images.shape[0])
    return {ENCODER_PREFIX + n: p.grad.detach().clone() for n, p in encoder.named_parameters()}


def split_reference(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``encoder.<name>`` -> parameter of ``model``: what an encoder gradient is checked against."""
    return {n: p.detach() for n, p in model.named_parameters() if n.startswith(ENCODER_PREFIX)}


def with_split_encoder(
    g_c: Mapping[str, torch.Tensor] | None, n_raw: int, split: Sequence[Update]
) -> tuple[dict[str, torch.Tensor] | None, int]:
    """(G_C with the split encoder gradients in its phi part, n_C^phi).

    G_C^phi = (n_raw G_raw^phi + sum_k n_k e_k) / (n_raw + sum_k n_k); theta's part is kept as it is. Without
    split updates, (g_c, n_raw) unchanged; without g_c (nothing centralized arrived), G_C holds phi only."""
    if not split:
        return (None if g_c is None else dict(g_c)), n_raw
    n_split = sum(u.num_samples for u in split)
    n_phi = n_raw + n_split
    out = dict(g_c or {})
    for name in split[0].tensors:
        total = sum(u.tensors[name] * (u.num_samples / n_phi) for u in split)
        out[name] = total + g_c[name] * (n_raw / n_phi) if g_c is not None and n_raw else total
    return out, n_phi
