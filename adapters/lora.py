"""LoRA (Hu et al., 2021).

    h = W0 x + b + s · B A x,      A: r × d_in,  B: d_out × r,  s = alpha / r

A is Kaiming-uniform (a = sqrt(5), as loralib and PEFT), B = 0, so step 0 equals the base model.
Dropout (if any) acts on the adapter input only, as in PEFT.  Trainable: r · (d_in + d_out).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import AdapterLayer, random_factor


class LoRALayer(AdapterLayer):
    """``h = W0 x + b + s · B A x``; A Kaiming-uniform(a=√5), B zero; both trainable."""

    method = "lora"

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None,
                 dropout: float = 0.0, name: str = "?", generator: torch.Generator | None = None):
        super().__init__(base, rank, alpha, dropout, name)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.lora_A = nn.Parameter(self._factor(random_factor((rank, self.d_in), "kaiming", gen)))
        self.lora_B = nn.Parameter(self._factor(torch.zeros(self.d_out, rank)))

    def scaled_factors(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        return self.lora_B, self.lora_A, self.scaling
