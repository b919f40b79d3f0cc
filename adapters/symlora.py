"""SymLoRA (Panoutsos, Santos, Figueiredo, "Towards Symmetric Low-Rank Adapters").

    h = λ · W0 x + b + s · Q diag(Λ) Qᵀ x,     Q: n × r,  Λ ∈ R^r,  λ scalar,  W0: n × n

λ multiplies W0 only, not the bias; it is a trainable scalar per matrix (``learn_lambda=True``) or
fixed at 1 and not a parameter (``learn_lambda=False``).  Init: Λ = 0, λ = 1, Q random and trainable:
``q_init="kaiming"`` (Qᵀ initialised like LoRA's A, U(±1/√n)) or ``"orthogonal"`` (orthonormal
columns).  The update is applied as ``s · (QΛ)(Qᵀ x)`` — the n × n matrix is never built in forward.
Trainable: n·r + r (+1).  A non-square target is a ValueError.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import AdapterLayer, random_factor


class SymLoRALayer(AdapterLayer):
    """``h = λ·W0 x + b + s·Q diag(Λ) Qᵀ x``; Λ = 0, λ = 1, Q random; all trainable."""

    method = "symlora"

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None,
                 dropout: float = 0.0, name: str = "?", generator: torch.Generator | None = None,
                 learn_lambda: bool = True, q_init: str = "kaiming"):
        d_out, d_in = base.weight.shape
        if d_out != d_in:
            raise ValueError(f"symlora needs a square weight, but module {name!r} has shape "
                             f"(d_out={d_out}, d_in={d_in})")
        if q_init not in ("kaiming", "orthogonal"):
            raise ValueError(f"symlora: unknown q_init {q_init!r}; known: ('kaiming', 'orthogonal')")
        super().__init__(base, rank, alpha, dropout, name)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        q = random_factor((rank, d_in), q_init, gen).T  # Qᵀ is r × n, like LoRA's A
        self.Q = nn.Parameter(self._factor(q.contiguous()))
        self.Lambda = nn.Parameter(self._factor(torch.zeros(rank)))
        self.lam = nn.Parameter(self._factor(torch.ones(()))) if learn_lambda else None

    def base_scale(self) -> torch.Tensor | None:
        return self.lam

    def scaled_factors(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        # B = Q diag(Λ), A = Qᵀ: the forward's s·B(A x) is ((x Q) * Λ) Qᵀ at the cost of a column scale of Q
        return self.Q * self.Lambda.unsqueeze(-2), self.Q.mT, self.scaling
