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
import weakref
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
    slot_token: torch.Tensor  # (runs * widest,) the token of each grid slot (padding: 0)
    member: torch.Tensor  # (T,) the run of each token (derivable from grid_index; built on the host for free)


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
        """x: (T, d) tokens of all runs, member-major: the frozen matmul and the low-rank update as one
        :class:`LowRankLinear` node. SymLoRA's λ_k·(W0 x) is W0 (λ_k x): the node then takes each
        token scaled by its run's λ, and the adapter's input x' (x after its dropout) apart; λ's
        gradient comes through the product with x."""
        scale = self.twin.base_scale()
        if scale is None:
            return project([self], x)
        scale = scale.to(x.dtype)
        scaled = x * (scale if layout.runs == 1 else scale[layout.member].unsqueeze(-1))
        b, a, s = self.twin.scaled_factors()
        update = Update(0, self.base.weight.shape[0], s, dropped=True)
        return LowRankLinear.apply(scaled, layout, (update,), self.base.weight, self.base.bias, b, a,
                                   self.dropout(x).to(a.dtype))


@dataclass(frozen=True)
class Update:
    """Where and how one low-rank update of :class:`LowRankLinear` is applied (its tensors are
    passed apart)."""
    start: int  # its output columns: [start, start + width)
    width: int
    scale: float = 1.0  # s of s·B A
    masked: bool = False  # the adapter's input is x·mask (keyed dropout)
    dropped: bool = False  # the adapter's input is given as is (any other dropout)


def _frozen(module: nn.Module) -> nn.Linear | None:
    """The frozen linear of `module`: itself (a frozen nn.Linear) or the unscaled base of a
    PackedLayer; None for anything else."""
    if isinstance(module, PackedLayer):
        return module.base if module.twin.base_scale() is None else None
    if isinstance(module, nn.Linear) and not any(p.requires_grad for p in module.parameters()):
        return module
    return None


_concatenated: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _stacked_frozen(linears: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The frozen weights (and biases) of `linears` as one matrix, so that one matmul computes them
    all (each output column is the same dot product as alone): built once, kept as long as the first
    weight lives, rebuilt if any of them changes in place."""
    if len(linears) == 1:
        return linears[0].weight, linears[0].bias
    key = tuple((id(t), t._version, t.data_ptr(), t.dtype, t.device)  # (moved or cast: other storage)
                for m in linears for t in (m.weight, m.bias) if t is not None)
    cached = _concatenated.get(linears[0])
    if cached is None or cached[0] != key:
        biases = [m.bias for m in linears]
        bias = None if any(b is None for b in biases) else torch.cat(biases)
        cached = (key, torch.cat([m.weight for m in linears]), bias)
        _concatenated[linears[0]] = cached
    return cached[1], cached[2]


def project(modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The outputs of `modules` over the same tokens x, side by side (q, k and v; or one adapted
    linear): one :class:`LowRankLinear` node when each of them is a frozen linear or a packed adapter
    of an unscaled frozen weight, else each module on its own and a concatenation."""
    linears = [_frozen(m) for m in modules]
    usable = _layout is not None and x.dim() == 2 and x.shape[0] == _layout.tokens and all(linears) and \
        len({m.bias is None for m in linears}) == 1
    if not usable:
        return torch.cat([m(x) for m in modules], dim=-1) if len(modules) > 1 else modules[0](x)
    updates, tensors, start = [], [], 0
    for module, linear in zip(modules, linears):
        width = linear.weight.shape[0]
        if isinstance(module, PackedLayer):
            b, a, s = module.twin.scaled_factors()
            mask = getattr(module.dropout, "scaled_mask", lambda _: None)(x)  # keyed dropout: applied inside
            inputs = x if mask is not None else module.dropout(x)
            dropped = None if inputs is x else inputs.to(a.dtype)
            updates.append(Update(start, width, s, mask is not None, dropped is not None))
            tensors += [b, a, mask if mask is not None else dropped]
        start += width
    weight, bias = _stacked_frozen(linears)
    return LowRankLinear.apply(x, _layout, tuple(updates), weight, bias, *tensors)


class LowRankLinear(torch.autograd.Function):
    """Frozen linears over the same tokens x side by side, ``y = x W0ᵀ + b`` (their weights stacked:
    one matmul), some of them adapted, ``+ s·(x' A_kᵀ) B_kᵀ`` on their columns (x' is x after the
    adapter's dropout, A_k and B_k the factors of each token's run). Written out forward and backward
    so that a step launches as few kernels as the arithmetic needs: autograd over the same
    expressions adds a node per op, the scaling of B, transposes whose gradients must be copied back
    to the bank's layout, a concatenation, and the accumulations of x's gradient (here one matmul
    and one addmm per update). W0 and b are frozen: no gradient is computed for them.

    The adapter's dropout comes in as a mask (keyed dropout: x' = x·mask, its gradient folded into
    x's) or, for any other dropout, as x' itself (its gradient returned separately).

    A lone run (one member) multiplies the stream directly (2 matmuls forward, 4 backward per
    update). A pack scatters x' into a zero-padded (runs, widest) grid so that each run's tokens
    meet only its own factors (a batched matmul; a diverged run's NaNs stay in its own rows) and
    gathers the update back.

    Per update, with x' the adapter's input and h = x' A_kᵀ: g_B = s·gᵀ h, g_A = (s·g B_k)ᵀ x',
    g_x' = (s·g B_k) A_k; g_x = g W0 + g_x' (·mask for keyed dropout; returned apart for x' given as is).
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, layout, updates, weight, bias, *tensors):
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        x_in, weight = x.to(dtype), weight.to(dtype)  # what autocast would give each matmul
        y = x_in @ weight.t() if bias is None else torch.addmm(bias.to(dtype), x_in, weight.t())
        saved, shared_grid = [weight], None  # updates of x itself (no dropout) share its grid
        # a pack's updates go to one (runs, widest, columns) grid when their columns are adjacent,
        # gathered back to the tokens at once
        low = min(u.start for u in updates) if updates else 0
        high = max(u.start + u.width for u in updates) if updates else 0
        together = layout.runs > 1 and sum(u.width for u in updates) == high - low
        updates_grid = torch.empty(layout.runs, layout.widest, high - low, dtype=dtype, device=x.device) \
            if together else None
        for i, update in enumerate(updates):
            b, a, extra = tensors[3 * i].to(dtype), tensors[3 * i + 1].to(dtype), tensors[3 * i + 2]
            out = y[:, update.start:update.start + update.width]
            inputs = x_in if extra is None else (x * extra).to(dtype) if update.masked else extra.to(dtype)
            if layout.runs == 1:
                h = inputs @ a[0].t()  # (T, r)
                out.addmm_(h, b[0].t(), alpha=update.scale)
                saved += [b, a, inputs, h, extra if update.masked else None]
            else:
                grid = shared_grid if extra is None else None
                if grid is None:
                    grid = inputs.new_zeros(layout.runs * layout.widest, inputs.shape[-1])
                    grid = grid.index_copy_(0, layout.grid_index, inputs).view(layout.runs, layout.widest, -1)
                    shared_grid = grid if extra is None else shared_grid
                h = torch.bmm(grid, a.mT)  # (runs, widest, r); zero rows at the padding
                nothing = torch.empty((), dtype=h.dtype, device=h.device)  # beta = 0: no input
                if together:
                    torch.baddbmm(nothing, h, b.mT, beta=0, alpha=update.scale,
                                  out=updates_grid[:, :, update.start - low:update.start - low + update.width])
                else:
                    update_grid = torch.baddbmm(nothing, h, b.mT, beta=0, alpha=update.scale)
                    out += update_grid.view(layout.runs * layout.widest, -1).index_select(0, layout.grid_index)
                saved += [b, a, grid, h, extra if update.masked else None]
        if together:
            y[:, low:high].add_(updates_grid.view(layout.runs * layout.widest, -1).index_select(0, layout.grid_index))
        ctx.save_for_backward(*saved)
        ctx.updates, ctx.layout = updates, layout
        return y

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g):
        weight, *saved = ctx.saved_tensors
        layout, need_x = ctx.layout, ctx.needs_input_grad[0]
        # a pack whose updates are all of x itself: x's gradient starts from their gathered sum
        deferred = need_x and layout.runs > 1 and not any(u.masked for u in ctx.updates)
        gx = g @ weight if need_x and not deferred else None
        # under autocast x's gradient is summed in fp32, as autograd sums its parts (in place, addmm_
        # would round the running sum to bf16 at every step)
        amp = torch.is_autocast_enabled(g.device.type)
        gx = gx.float() if amp and gx is not None else gx
        grads, grid_g, grid_gx = [], None, None
        for i, update in enumerate(ctx.updates):
            b, a, inputs, h, mask = saved[5 * i:5 * i + 5]
            need_b, need_a, need_extra = ctx.needs_input_grad[5 + 3 * i:8 + 3 * i]
            gy = g[:, update.start:update.start + update.width]
            gb = ga = gextra = None
            need_inputs = need_extra if update.dropped else need_x
            if layout.runs == 1:
                b0, a0 = b[0], a[0]
                gh = torch.addmm(h, gy, b0, beta=0, alpha=update.scale)  # s·g B: h only lends its shape (beta = 0)
                if need_b:
                    gb = torch.addmm(b0, gy.t(), h, beta=0, alpha=update.scale).unsqueeze(0)  # s·gᵀ h
                if need_a:
                    ga = (gh.t() @ inputs).unsqueeze(0)
                if need_inputs:
                    if update.dropped:
                        gextra = gh @ a0
                    elif update.masked:
                        gx.addcmul_(mask, gh @ a0)
                    elif amp:
                        gx += gh @ a0
                    else:
                        gx.addmm_(gh, a0)
            else:
                # g on the grid (all columns at once): every slot reads a token (padding reads token
                # 0); the padding rows of the saved grid and h are zero, so what the padding reads
                # adds nothing to gA, gB
                if grid_g is None:
                    grid_g = g.index_select(0, layout.slot_token)
                grid_gy = grid_g[:, update.start:update.start + update.width].view(layout.runs, layout.widest, -1)
                gh = torch.baddbmm(h, grid_gy, b, beta=0, alpha=update.scale)
                if need_b:
                    gb = torch.baddbmm(b, grid_gy.mT, h, beta=0, alpha=update.scale)
                if need_a:
                    ga = torch.bmm(gh.mT, inputs)
                if need_inputs and not (update.dropped or update.masked):  # summed on the grid, gathered once
                    grid_gx = torch.bmm(gh, a) if grid_gx is None else torch.baddbmm(grid_gx, gh, a)
                elif need_inputs:
                    g_in = torch.bmm(gh, a).view(layout.runs * layout.widest, -1).index_select(0, layout.grid_index)
                    if update.dropped:
                        gextra = g_in
                    else:
                        gx.addcmul_(mask, g_in)
            grads += [gb, ga, gextra]
        if grid_gx is not None:
            gathered = grid_gx.view(layout.runs * layout.widest, -1).index_select(0, layout.grid_index)
            if not deferred:
                gx.add_(gathered)
            else:
                gx = (g @ weight).float() + gathered if amp else gathered.addmm_(g, weight)
        elif deferred:
            gx = (g @ weight).float() if amp else g @ weight
        return (gx, None, None, None, None, *grads)


class BatchedLinear(torch.autograd.Function):
    """K linears over K blocks of rows, ``y_k = x_k W_kᵀ + b_k``, with the weight's gradient computed
    as ``g_kᵀ x_k``: already in the weight's (K, out, in) layout, where autograd's transpose of
    ``x_kᵀ g_k`` would be copied twice more to get there. Backward: g_x_k = g_k W_k, g_W_k = g_kᵀ x_k,
    g_b_k = Σ_rows g_k."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.biased = bias is not None
        return torch.bmm(x, weight.mT) if bias is None else torch.baddbmm(bias.unsqueeze(1), x, weight.mT)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        x, weight = x.to(g.dtype), weight.to(g.dtype)  # (under autocast: the casts autocast makes)
        return (torch.bmm(g, weight) if need_x else None, torch.bmm(g.mT, x) if need_weight else None,
                g.sum(1) if need_bias and ctx.biased else None)


class PackedHead(nn.Module):
    """K classification heads as batched matmuls: a single Linear, or RoBERTa's head (the <s> token,
    dropout, dense, tanh, dropout, out_proj). Only the `classifier` module: a head with other modules
    (DistilBERT's pre_classifier, adapters/targets.py `head_extras`) is never packed (training/pack.py)."""

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
        y = BatchedLinear.apply(x, weight, bias)
        return y.reshape(-1, y.shape[-1])

    def forward(self, features: torch.Tensor, **kwargs) -> torch.Tensor:
        if self.dropout is None:
            return self._linear(0, features[:, 0] if features.dim() == 3 else features)
        # the <s> token; a (N, 1, d) input (the flat path) squeezed, whose gradient is a view, not a scatter
        x = self.dropout(features.squeeze(1) if features.shape[1] == 1 else features[:, 0, :])
        x = torch.tanh(self._linear(0, x))
        return self._linear(1, self.dropout(x))
