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
    slot_token: torch.Tensor | None = None  # (runs * widest,) the token of each grid slot (padding: 0)


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
        if scale is None:  # the frozen matmul and the low-rank update as one autograd node
            b, a, s = self.twin.scaled_factors()
            mask = getattr(self.dropout, "scaled_mask", lambda _: None)(x)  # keyed dropout: the layer applies it
            inputs = x if mask is not None else self.dropout(x)
            dropped = None if inputs is x else inputs.to(a.dtype)
            return LowRankLinear.apply(x, dropped, mask, self.base.weight, self.base.bias, b, a, s, layout)
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


class LowRankLinear(torch.autograd.Function):
    """``y = x W0ᵀ + b + s·(x' A_kᵀ) B_kᵀ`` over a flat token stream (x' is x after the adapter's
    dropout, A_k and B_k the factors of each token's run), written out forward and backward so that
    a step launches as few kernels as the arithmetic needs: autograd over the same expression adds a
    node per op, the scaling of B, transposes whose gradients must be copied back to the bank's
    layout, and accumulations of x's gradient. W0 and b are frozen: no gradient is computed for them.

    The adapter's dropout comes in as a mask (keyed dropout: x' = x·mask, its gradient folded into
    x's) or, for any other dropout, as x' itself (its gradient returned separately).

    A lone run (one member) multiplies the stream directly (3 matmuls forward, 5 backward). A pack
    scatters x' into a zero-padded (runs, widest) grid so that each run's tokens meet only its own
    factors (a batched matmul; a diverged run's NaNs stay in its own rows) and gathers the update back.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, dropped, mask, weight, bias, b, a, scale, layout):
        inputs = x if dropped is None else dropped
        if mask is not None:
            inputs = (x * mask).to(a.dtype)
        y = x @ weight.t() if bias is None else torch.addmm(bias, x, weight.t())
        if layout.runs == 1:
            h = inputs @ a[0].t()  # (T, r)
            y = torch.addmm(y, h, b[0].t(), alpha=scale)
            grid = None
        else:
            grid = inputs.new_zeros(layout.runs * layout.widest, inputs.shape[-1]).index_copy_(0, layout.grid_index, inputs)
            grid = grid.view(layout.runs, layout.widest, -1)
            h = torch.bmm(grid, a.mT)  # (runs, widest, r); zero rows at the padding
            update = torch.baddbmm(h.new_empty(()), h, b.mT, beta=0, alpha=scale)
            y = y + update.view(layout.runs * layout.widest, -1).index_select(0, layout.grid_index)
        ctx.save_for_backward(weight, b, a, inputs if grid is None else grid, h, mask)
        ctx.scale, ctx.layout, ctx.dropped = scale, layout, dropped is not None
        return y

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g):
        weight, b, a, inputs, h, mask = ctx.saved_tensors
        scale, layout = ctx.scale, ctx.layout
        need_x, need_dropped, _, _, _, need_b, need_a = ctx.needs_input_grad[:7]
        need_inputs = need_dropped or (need_x and not ctx.dropped)
        gx = gdropped = gb = ga = None
        if layout.runs == 1:
            b0, a0 = b[0], a[0]
            gh = torch.addmm(h, g, b0, beta=0, alpha=scale)  # s·g B: h only lends its shape (beta = 0)
            if need_b:
                gb = torch.addmm(b0, g.t(), h, beta=0, alpha=scale).unsqueeze(0)  # s·gᵀ h
            if need_a:
                ga = (gh.t() @ inputs).unsqueeze(0)
            if need_x:
                gx = g @ weight
            if need_inputs:
                if ctx.dropped:
                    gdropped = gh @ a0
                elif mask is not None:
                    gx = gx.addcmul_(mask, gh @ a0)
                else:
                    gx = torch.addmm(gx, gh, a0)
        else:
            # g on the grid: every slot reads a token (padding reads token 0); the padding rows of
            # the saved grid and h are zero, so what the padding reads adds nothing to gA, gB
            grid_g = g.index_select(0, layout.slot_token).view(layout.runs, layout.widest, -1)
            gh = torch.baddbmm(h, grid_g, b, beta=0, alpha=scale)
            if need_b:
                gb = torch.baddbmm(b, grid_g.mT, h, beta=0, alpha=scale)
            if need_a:
                ga = torch.bmm(gh.mT, inputs)
            if need_x:
                gx = g @ weight
            if need_inputs:
                g_in = torch.bmm(gh, a).view(layout.runs * layout.widest, -1).index_select(0, layout.grid_index)
                if ctx.dropped:
                    gdropped = g_in
                elif mask is not None:
                    gx = gx.addcmul_(mask, g_in)
                else:
                    gx = gx + g_in
        return gx, gdropped, None, None, None, gb, ga, None, None


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
