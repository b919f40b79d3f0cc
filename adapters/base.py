"""Shared base of every adapter method: a frozen ``nn.Linear`` wrapped by composition.

A low-rank method states its equation once, as its scaled factors ``(B, A, s)`` with
``s · B A = ΔW`` (:meth:`AdapterLayer.scaled_factors`) and, when it scales the frozen weight, its
base-weight scale λ (:meth:`AdapterLayer.base_scale`, SymLoRA's; ``None`` means 1):

    h = λ · W0 x + b + s · B (A dropout(x))

Everything else derives from these two, here: the readable forward (two thin matmuls, ΔW never
built; dropout on the adapter input only, as PEFT), ``delta_weight``, ``factors``, and through them
merge, PEFT export and per-layer norms (adapters/merge.py, export.py, norms.py) and the packed
kernels (adapters/packed.py).  A method not of that form sets ``low_rank = False`` and writes its own
``update`` and ``delta_weight``: merge and norms use those; PEFT export and packs refuse it.

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

    Subclasses set their tensors in ``__init__`` (trainable ones as ``nn.Parameter``, frozen ones as
    buffers) and implement :meth:`scaled_factors` (and :meth:`base_scale` if they scale ``W0``).
    ``scaling`` is ``s = alpha / r``.
    """

    method: str = "adapter"
    low_rank: bool = True  # the update is s·B A from scaled_factors (methods.py's `low_rank`)

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

    # what a method declares -------------------------------------------------------------------
    def scaled_factors(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(B, A, s)``, ``B: d_out × r``, ``A: r × d_in``, with ``s · B A = ΔW``: the method's
        equation.  ``s`` is kept apart (not folded into B) so that a fused matmul applies it as its
        ``alpha`` instead of a kernel on B.  Written with ``.mT`` / ``unsqueeze(-2)`` where needed, it
        also serves a pack's K-stacked tensors (adapters/packed.py ``stacked_twin``)."""
        raise NotImplementedError(self._not_low_rank("scaled_factors") if not self.low_rank else
                                  f"{type(self).__name__} must implement scaled_factors()")

    def base_scale(self) -> torch.Tensor | None:
        """Scalar multiplying ``W0`` (SymLoRA's lambda); ``None`` means 1."""
        return None

    # derived from the declaration --------------------------------------------------------------
    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, A)`` with ``B A = ΔW`` (the scaling folded into B): the update as a rank-r product,
        whatever scales ``W0``."""
        b, a, s = self.scaled_factors()
        return b * s, a

    def update(self, x: torch.Tensor) -> torch.Tensor:
        """``ΔW dropout(x)`` as ``s · B (A x')``: two thin matmuls, ``ΔW`` never built."""
        b, a, s = self.scaled_factors()
        x = self.dropout(x).to(a.dtype)
        return F.linear(F.linear(x, a), b) * s

    def delta_weight(self) -> torch.Tensor:
        """``ΔW = s · B A`` as an exact ``(d_out, d_in)`` matrix."""
        b, a, s = self.scaled_factors()
        return (b @ a) * s

    def lora_factors(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """:meth:`factors` if the layer is exactly a rank-r LoRA update of an unscaled ``W0``
        (PEFT-exportable), else ``None`` (SymLoRA with lambda != 1, a method not of low-rank form)."""
        if not self.low_rank:
            return None
        lam = self.base_scale()
        return self.factors() if lam is None or float(lam.detach()) == 1.0 else None

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        """``λ · W0 x + b`` (λ scales the weight, not the bias)."""
        lam = self.base_scale()
        if lam is None:
            return self.base(x)
        out = F.linear(x, self.base.weight) * lam
        return out if self.base.bias is None else out + self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.frozen(x)
        return out + self.update(x).to(out.dtype)

    def _not_low_rank(self, what: str) -> str:
        return (f"{self.method}: {what}() needs the low-rank form s·B A, and this method is not of it "
                "(low_rank = False): it trains through its own forward, merges through delta_weight()")

    def extra_repr(self) -> str:
        return (f"method={self.method}, d_in={self.d_in}, d_out={self.d_out}, rank={self.rank}, "
                f"scaling={self.scaling:g}")
