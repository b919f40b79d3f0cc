"""DeLoRA of Dantuluri, Sullivan, Yang, "DeLoRA: Decomposition Based Low Rank Adaption".

NOT PEFT's DeLoRA (Bini et al., 2025, ``peft.DeloraConfig``, which normalises B and A and learns a
strength): this is the decomposition-based method, a LoRA whose outer factors are frozen.

    h = W0 x + b + s · B Σ A x,    A: r × d_in, B: d_out × r frozen random,  Σ: r × r trainable

Σ is full (r² trainable) or diagonal (``sigma="diagonal"``, r trainable); Σ = 0 at init, so step 0
equals the base model.  A and B are drawn i.i.d. from a seeded per-module generator.

**Decision** (ours, not the report's code, which is not public): ``init="gaussian"``, N(0, 1/d_in), by
default. The report's text says "we initialize the elements of A and B to be iid normally
distributed" and, for its Figure 2, "similar to how LoRA initializes A" (the LoRA paper's text says
Gaussian; loralib's code is Kaiming-uniform). ``init="kaiming"`` (LoRA's code, U(±1/√d_in), about
a third of the Gaussian's variance, so B·A is about 3× smaller) and ``"orthogonal"`` are named
options (``adapter.options.init=kaiming``).  For "LoRA of
LoRA" the frozen factors are a trained LoRA's (see :func:`adapters.lora_of_lora`).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import FROZEN_INITS, AdapterLayer, random_factor


class DeLoRALayer(AdapterLayer):
    """Dantuluri et al.'s DeLoRA (not PEFT's/Bini et al.'s): ``h = W0 x + b + s · B Σ A x``."""

    method = "delora"

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None,
                 dropout: float = 0.0, name: str = "?", generator: torch.Generator | None = None,
                 sigma: str = "full", init: str = "gaussian"):
        if sigma not in ("full", "diagonal"):
            raise ValueError(f"delora: unknown sigma {sigma!r}; known: ('full', 'diagonal')")
        if init not in FROZEN_INITS:
            raise ValueError(f"delora: unknown init {init!r}; known: {FROZEN_INITS}")
        super().__init__(base, rank, alpha, dropout, name)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.register_buffer("delora_A", self._factor(random_factor((rank, self.d_in), init, gen)))
        self.register_buffer("delora_B", self._factor(random_factor((self.d_out, rank), init, gen)))
        self.diagonal = sigma == "diagonal"
        shape = (rank,) if self.diagonal else (rank, rank)
        self.delora_Sigma = nn.Parameter(self._factor(torch.zeros(shape)))

    def scaled_factors(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        return self.delora_B, self.sigma_A(), self.scaling

    def sigma_A(self) -> torch.Tensor:  # (batched over a leading dim too)
        """Σ A, the trainable inner factor times the frozen A (a diagonal Σ scales A's rows)."""
        if self.diagonal:
            return self.delora_Sigma.unsqueeze(-1) * self.delora_A
        return self.delora_Sigma @ self.delora_A
