"""Shared base of every adapter method: a frozen ``nn.Linear`` wrapped by composition.

An :class:`AdapterLayer` computes ``h = base(x) + update(x)`` or, when the method scales the frozen
weight (SymLoRA's ``lambda``), ``h = lambda * (W0 x) + b + update(x)``.  Methods implement only
``update`` (``s * dW x`` from the factors, never building ``dW``), ``delta_weight`` (``s * dW`` as a
``(d_out, d_in)`` matrix), ``factors`` (``B A = s * dW``) and optionally ``base_scale``.  Merge, PEFT export,
state handling and per-layer norms are written once, on top of these, in the other modules.

Random tensors come from a ``torch.Generator`` seeded per module (:func:`module_generator`), so
the same global seed gives the same factors and another seed different ones.
"""
from __future__ import annotations

import hashlib
import math

import torch
from torch import nn
from torch.nn import functional as F

FROZEN_INITS = ("orthogonal", "kaiming", "gaussian")


def module_generator(seed: int, name: str) -> torch.Generator:
    """A CPU generator whose seed is a deterministic hash of ``(seed, module name)``."""
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def random_factor(shape: tuple[int, int], kind: str, gen: torch.Generator) -> torch.Tensor:
    """A random ``(rows, cols)`` float32 CPU matrix, ``fan_in = cols`` (torch's convention).

    - ``kaiming``: LoRA's A init, ``kaiming_uniform_(a=sqrt(5))`` = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    - ``gaussian``: i.i.d. N(0, 1/fan_in).
    - ``orthogonal``: orthonormal rows if rows <= cols (LoRA's A, ``r x d_in``), else orthonormal
      columns (LoRA's B, ``d_out x r``); Haar-distributed, from the QR of a Gaussian matrix.
    """
    rows, cols = shape
    if kind == "kaiming":
        bound = 1.0 / math.sqrt(cols)
        return torch.empty(rows, cols).uniform_(-bound, bound, generator=gen)
    if kind == "gaussian":
        return torch.randn(rows, cols, generator=gen) / math.sqrt(cols)
    if kind == "orthogonal":
        tall = rows >= cols
        m = torch.randn(max(rows, cols), min(rows, cols), generator=gen, dtype=torch.float64)
        q, r = torch.linalg.qr(m)
        q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
        return (q if tall else q.T).float().contiguous()
    raise ValueError(f"unknown init {kind!r}; known: {FROZEN_INITS}")


class AdapterLayer(nn.Module):
    """Wraps a frozen nn.Linear by composition: ``self.base = linear`` (frozen).

    Subclasses set their factors in ``__init__`` (trainable ones as ``nn.Parameter``, frozen ones as
    buffers) and implement ``update`` and ``delta_weight``.  ``scaling`` is ``s = alpha / r``.
    """

    method: str = "adapter"

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None,
                 dropout: float = 0.0, name: str = "?"):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"{name}: expected nn.Linear, got {type(base).__name__}")
        d_out, d_in = base.weight.shape
        if not isinstance(rank, int) or rank <= 0 or rank > min(d_in, d_out):
            raise ValueError(
                f"{self.method}: rank {rank!r} is invalid for module {name!r} of shape "
                f"(d_out={d_out}, d_in={d_in}); need 1 <= rank <= {min(d_in, d_out)}")
        self.base = base
        base.requires_grad_(False)
        self.name, self.rank, self.d_in, self.d_out = name, rank, d_in, d_out
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    # factory helpers for subclasses ---------------------------------------------------------
    def _factor(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.base.weight.device, dtype=self.base.weight.dtype)

    # the interface ---------------------------------------------------------------------------
    def base_scale(self) -> torch.Tensor | None:
        """Scalar multiplying ``W0`` (SymLoRA's lambda); ``None`` means 1."""
        return None

    def update(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``s * dW x`` from the factors, dropout on the adapter input; never builds ``dW``."""
        raise NotImplementedError

    def delta_weight(self) -> torch.Tensor:  # pragma: no cover - abstract
        """``s * dW`` as an exact ``(d_out, d_in)`` matrix."""
        raise NotImplementedError

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        """``(B, A)`` with ``B A = s * dW`` (scaling folded into B): the update as a rank-r product,
        whatever scales ``W0`` (packs apply many runs' updates as two batched matmuls with it)."""
        raise NotImplementedError

    def scaled_factors(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(B, A, s)`` with ``s · B A = s * dW``: :meth:`factors` with a scaling kept apart where
        the method has one, so that a fused matmul applies it (``alpha``) instead of a kernel on B."""
        b, a = self.factors()
        return b, a, 1.0

    def lora_factors(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """:meth:`factors` if the layer is exactly a rank-r LoRA update of an unscaled ``W0``
        (PEFT-exportable), else ``None`` (SymLoRA with lambda != 1)."""
        lam = self.base_scale()
        return self.factors() if lam is None or float(lam.detach()) == 1.0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.base_scale()
        if lam is None:
            out = self.base(x)
        else:
            out = F.linear(x, self.base.weight) * lam
            if self.base.bias is not None:
                out = out + self.base.bias
        return out + self.update(x).to(out.dtype)

    def extra_repr(self) -> str:
        return (f"method={self.method}, d_in={self.d_in}, d_out={self.d_out}, rank={self.rank}, "
                f"scaling={self.scaling:g}")
