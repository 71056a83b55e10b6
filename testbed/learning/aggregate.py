"""The joint update: combine the distributed UEs' updates with the BS's centralized gradient.

Notation (docs/learning.md): parameters split into phi (``encoder.*``) and theta (``decoder.*``).
G_D = sum_k (n_k / n_D) g_k over accepted distributed UEs, n_D = sum_k n_k.
G_C = the BS's centralized (pseudo-)gradient over n_C samples (n_C_phi of them raw, giving an encoder part).
theta <- theta - lr * (a G_D + (1 - a) G_C),  a = n_D / (n_D + n_C);
phi   <- phi - lr * (a_phi G_D + (1 - a_phi) G_C),  a_phi = n_D / (n_D + n_C_phi) when G_C has an encoder
part, else phi <- phi - lr * G_D. The step itself is taken by a server optimizer (SGD, momentum or Adam).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from testbed.errors import ConfigError
from testbed.learning.guards import Update

ENCODER_PREFIX = "encoder."


def weighted_mean(updates: Sequence[Update]) -> tuple[dict[str, torch.Tensor], int]:
    """G_D = sum_k (n_k / n_D) g_k and n_D; updates must be non-empty and already screened."""
    n_d = sum(u.num_samples for u in updates)
    names = updates[0].tensors.keys()
    return {name: sum(u.tensors[name] * (u.num_samples / n_d) for u in updates) for name in names}, n_d


def joint_gradient(
    g_d: Mapping[str, torch.Tensor] | None,
    n_d: int,
    g_c: Mapping[str, torch.Tensor] | None,
    n_c: float,
    n_c_phi: int,
) -> dict[str, torch.Tensor]:
    """The combined direction per parameter (see module docstring); either side may be absent (None).

    A parameter neither side has a gradient for (phi when only symbols arrived) is left out.
    """
    if g_d is None and g_c is None:
        raise ConfigError("joint_gradient needs at least one of G_D and G_C")
    names = (g_d or g_c).keys()
    out = {}
    for name in names:
        is_phi = name.startswith(ENCODER_PREFIX)
        n_c_here = n_c_phi if is_phi else n_c
        has_d, has_c = g_d is not None and n_d > 0, g_c is not None and n_c_here > 0
        if has_d and not has_c:
            out[name] = g_d[name]
        elif has_c and not has_d:
            out[name] = g_c[name]
        elif not has_d:
            continue
        else:
            a = n_d / (n_d + n_c_here)
            out[name] = a * g_d[name] + (1.0 - a) * g_c[name]
    return out


@dataclass(frozen=True)
class ServerOptimizerConfig:
    """Server step: ``sgd`` (lr only), ``momentum`` (heavy ball) or ``adam`` (Kingma and Ba 2015)."""

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.99

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "momentum", "adam"):
            raise ConfigError(f"server optimizer {self.name!r} unknown; use sgd, momentum or adam")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"server lr={self.lr!r} must be finite and > 0")

    def build(self, params: Sequence[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The torch optimizer over ``params`` (the global model's)."""
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=(self.beta1, self.beta2))
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum if self.name == "momentum" else 0.0)


def apply_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, direction: Mapping[str, torch.Tensor]) -> None:
    """One server-optimizer step along ``direction``; parameters it omits are not touched at all."""
    for name, p in model.named_parameters():
        p.grad = direction[name].detach().clone() if name in direction else None
    optimizer.step()
