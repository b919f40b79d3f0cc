"""B-only and A-only LoRA (Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models").

    h = W0 x + b + s · B A x      (LoRA's function, one factor frozen at a seeded random init)

- ``b_only``: A frozen random, B trained from 0.   Trainable: d_out · r.
- ``a_only`` (control): B frozen random, A trained from 0.   Trainable: r · d_in.

``frozen_init``: ``orthogonal`` (default; orthonormal rows of A / columns of B), ``kaiming`` (LoRA's
A init) or ``gaussian`` (N(0, 1/fan_in)).  The trained factor is zero, so step 0 equals the base.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import FROZEN_INITS, AdapterLayer, random_factor


class OneSidedLoRALayer(AdapterLayer):
    """``h = W0 x + b + s · B A x`` with A (``trained="B"``) or B (``trained="A"``) frozen."""

    method = "one_sided"

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None,
                 dropout: float = 0.0, name: str = "?", generator: torch.Generator | None = None,
                 trained: str = "B", frozen_init: str = "orthogonal"):
        if trained not in ("A", "B"):
            raise ValueError(f"trained must be 'A' or 'B', got {trained!r}")
        if frozen_init not in FROZEN_INITS:
            raise ValueError(f"unknown frozen_init {frozen_init!r}; known: {FROZEN_INITS}")
        self.method = "b_only" if trained == "B" else "a_only"
        super().__init__(base, rank, alpha, dropout, name)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        if trained == "B":
            self.register_buffer("lora_A", self._factor(
                random_factor((rank, self.d_in), frozen_init, gen)))
            self.lora_B = nn.Parameter(self._factor(torch.zeros(self.d_out, rank)))
        else:
            self.lora_A = nn.Parameter(self._factor(torch.zeros(rank, self.d_in)))
            self.register_buffer("lora_B", self._factor(
                random_factor((self.d_out, rank), frozen_init, gen)))

    def update(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x).to(self.lora_A.dtype)
        return F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lora_B * self.scaling, self.lora_A
