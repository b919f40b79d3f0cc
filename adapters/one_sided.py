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

from .base import FROZEN_INITS, AdapterLayer, random_factor
from .lora import LoRALayer


class OneSidedLoRALayer(LoRALayer):
    """``h = W0 x + b + s · B A x`` with A (``trained="B"``) or B (``trained="A"``) frozen: LoRA's
    forward, ΔW and factors, other factors."""

    method = "one_sided"

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None,
                 dropout: float = 0.0, name: str = "?", generator: torch.Generator | None = None,
                 trained: str = "B", frozen_init: str = "orthogonal"):
        if trained not in ("A", "B"):
            raise ValueError(f"trained must be 'A' or 'B', got {trained!r}")
        if frozen_init not in FROZEN_INITS:
            raise ValueError(f"unknown frozen_init {frozen_init!r}; known: {FROZEN_INITS}")
        self.method = "b_only" if trained == "B" else "a_only"
        AdapterLayer.__init__(self, base, rank, alpha, dropout, name)  # not LoRA's init: other factors
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        if trained == "B":
            self.register_buffer("lora_A", self._factor(
                random_factor((rank, self.d_in), frozen_init, gen)))
            self.lora_B = nn.Parameter(self._factor(torch.zeros(self.d_out, rank)))
        else:
            self.lora_A = nn.Parameter(self._factor(torch.zeros(rank, self.d_in)))
            self.register_buffer("lora_B", self._factor(
                random_factor((self.d_out, rank), frozen_init, gen)))
