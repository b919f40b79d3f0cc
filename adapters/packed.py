"""Packed modules: K runs' adapter layers (or heads) over one frozen module, their tensors stacked
along a new first dimension, so that one forward serves all K in a fixed number of kernels.

The input holds the K runs' rows in order (run k's rows are the k-th of K equal blocks). A packed
layer computes the frozen matmul once over all rows and the K low-rank updates B_k A_k x as two
batched matmuls; a packed head runs its linears as batched matmuls. The stacked tensors come from
outside (training/fused.py lends the trainable ones as views of its parameter bank), so the
members' own modules stay intact for saving and loading.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import AdapterLayer


@dataclass
class TokenLayout:
    """Where the T tokens of a flat, member-major token stream go in a (runs, widest) grid."""
    grid_index: torch.Tensor  # (T,) member * widest + position among the member's tokens
    runs: int
    widest: int
    tokens: int


_layout: TokenLayout | None = None


@contextmanager
def tokens(layout: TokenLayout):
    """Within this block, packed layers take (T, d) inputs laid out as `layout` says."""
    global _layout
    previous, _layout = _layout, layout
    try:
        yield
    finally:
        _layout = previous


def stacked_twin(template: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """A shallow copy of `template` whose own parameters and buffers are replaced by `tensors`
    (each K-stacked): its methods (``factors``, ``base_scale``) then compute all K runs at once."""
    twin = copy.copy(template)
    twin._parameters, twin._buffers = {}, {}
    twin._modules = {name: module for name, module in template._modules.items() if name != "base"}
    for name, tensor in tensors.items():
        if isinstance(tensor, nn.Parameter):
            twin._parameters[name] = tensor
        else:
            twin._buffers[name] = tensor
    return twin


def own_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's own (not its children's) parameters and buffers."""
    return {**{n: p for n, p in module._parameters.items() if p is not None},
            **{n: b for n, b in module._buffers.items() if b is not None}}


class PackedLayer(nn.Module):
    """K adapter layers of one method over one frozen linear: ``h_k = λ_k·W0 x + b + B_k A_k x``."""

    def __init__(self, template: AdapterLayer, tensors: dict[str, torch.Tensor], runs: int):
        super().__init__()
        self.base, self.dropout, self.runs = template.base, template.dropout, runs
        self.twin = stacked_twin(template, tensors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _layout is not None and x.dim() == 2 and x.shape[0] == _layout.tokens:
            return self._forward_tokens(x, _layout)
        flat = x.reshape(self.runs, -1, x.shape[-1])  # block k: run k's rows, all their tokens
        scale = self.twin.base_scale()
        if scale is None:
            frozen = self.base(flat)
        else:  # SymLoRA: λ_k · (W0 x) + b
            frozen = F.linear(flat, self.base.weight) * scale.view(-1, 1, 1).to(flat.dtype)
            if self.base.bias is not None:
                frozen = frozen + self.base.bias
        b, a = self.twin.factors()
        inputs = self.dropout(x).reshape(self.runs, -1, x.shape[-1]).to(a.dtype)
        update = torch.bmm(torch.bmm(inputs, a.mT), b.mT)
        return (frozen + update.to(frozen.dtype)).reshape(*x.shape[:-1], -1)

    def _forward_tokens(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """x: (T, d) tokens of all runs, member-major; the updates through a (runs, widest) grid."""
        scale = self.twin.base_scale()
        if scale is None:
            frozen = self.base(x)
        else:
            member = torch.div(layout.grid_index, layout.widest, rounding_mode="floor")
            frozen = F.linear(x, self.base.weight) * scale.to(x.dtype)[member].unsqueeze(-1)
            if self.base.bias is not None:
                frozen = frozen + self.base.bias
        b, a = self.twin.factors()
        inputs = self.dropout(x).to(a.dtype)
        if layout.runs == 1:  # the grid is the stream itself
            update = torch.bmm(torch.bmm(inputs.unsqueeze(0), a.mT), b.mT)[0]
            return frozen + update.to(frozen.dtype)
        grid = inputs.new_zeros(layout.runs * layout.widest, x.shape[-1]).index_copy_(0, layout.grid_index, inputs)
        update = torch.bmm(torch.bmm(grid.view(layout.runs, layout.widest, -1), a.mT), b.mT)
        update = update.reshape(layout.runs * layout.widest, -1).index_select(0, layout.grid_index)
        return frozen + update.to(frozen.dtype)


class PackedHead(nn.Module):
    """K classification heads as batched matmuls: a single Linear, or RoBERTa's head (the <s> token,
    dropout, dense, tanh, dropout, out_proj)."""

    def __init__(self, template: nn.Module, tensors: dict[str, torch.Tensor], runs: int):
        super().__init__()
        self.runs = runs
        if isinstance(template, nn.Linear):
            self.dropout, self.linears = None, [""]
        elif all(isinstance(getattr(template, n, None), nn.Linear) for n in ("dense", "out_proj")):
            self.dropout, self.linears = template.dropout, ["dense.", "out_proj."]
        else:
            raise TypeError(f"packs support a Linear head or RoBERTa's classification head, "
                            f"not {type(template).__name__}")
        self.weights = [tensors[f"{prefix}weight"] for prefix in self.linears]
        self.biases = [tensors.get(f"{prefix}bias") for prefix in self.linears]
        self._tensors = nn.ParameterDict({k.replace(".", "_"): v for k, v in tensors.items()
                                          if isinstance(v, nn.Parameter)})  # so that .parameters() sees them

    def _linear(self, i: int, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weights[i], self.biases[i]
        x = x.reshape(self.runs, -1, x.shape[-1]).to(weight.dtype)
        y = torch.bmm(x, weight.mT) if bias is None else torch.baddbmm(bias.unsqueeze(1), x, weight.mT)
        return y.reshape(-1, y.shape[-1])

    def forward(self, features: torch.Tensor, **kwargs) -> torch.Tensor:
        if self.dropout is None:
            return self._linear(0, features[:, 0] if features.dim() == 3 else features)
        x = self.dropout(features[:, 0, :])
        x = torch.tanh(self._linear(0, x))
        return self._linear(1, self.dropout(x))
