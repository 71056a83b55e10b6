"""The only thing learning knows about a radio link: complex symbols in, received symbols and noise out.

A ``SymbolChannel`` is what the codec is trained and evaluated through. ``AwgnChannel`` simulates it here
(differentiable, so an encoder can be trained through it). Over the air the node cores carry symbol uploads
as OFDM analog frames instead (testbed/link/analog.py), and the BS trains on what its receiver equalised.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from testbed.errors import LearningError


class SymbolChannel(Protocol):
    """Carries complex symbols to the BS."""

    def transmit(self, symbols: torch.Tensor) -> tuple[torch.Tensor, float]:
        """symbols : (batch, k) complex64, unit average power -> (received (batch, k) complex64, noise variance)."""
        ...


def noise_variance(snr_db: float) -> float:
    """Complex noise variance N0 for unit-power symbols at ``snr_db`` (Es/N0)."""
    if not math.isfinite(snr_db):
        raise LearningError(f"snr_db={snr_db!r} must be finite")
    return 10.0 ** (-snr_db / 10.0)


class AwgnChannel:
    """y = x + n with n ~ CN(0, N0), N0 = 10^(-snr_db/10); noise drawn from the given generator only."""

    def __init__(self, snr_db: float, generator: torch.Generator) -> None:
        self.snr_db = float(snr_db)
        self.noise_var = noise_variance(snr_db)
        self.generator = generator

    def transmit(self, symbols: torch.Tensor) -> tuple[torch.Tensor, float]:
        """symbols : (batch, k) complex64 -> (received (batch, k) complex64, N0); gradients flow through."""
        if not symbols.is_complex():
            raise LearningError(f"AwgnChannel expects complex symbols, got dtype {symbols.dtype}")
        scale = math.sqrt(self.noise_var / 2.0)
        noise = torch.randn((*symbols.shape, 2), generator=self.generator, dtype=torch.float32, device=symbols.device)
        return symbols + scale * torch.view_as_complex(noise), self.noise_var
