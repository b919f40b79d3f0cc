"""Padding-free training steps: the K·B sequences of a pack's step flattened into one token stream.

Every linear layer (the frozen ones, the adapters, the feed-forward block) runs over the T real
tokens only; attention re-pads each sequence to the step's longest (a small share of the FLOPs at
GLUE lengths, and exact: padded keys are masked, padded queries dropped) through the same SDPA or
keyed-dropout path as a padded batch. Tokens are member-major, so each member's batch is exactly
the one it would train on alone; its adapters see their own tokens through a (K, T_max) scatter
(adapters/packed.py), its dropout masks are keyed by (example, position) (training/streams.py).
The layout (and the dropout keys) is built on the host with numpy (no device kernels), then copied
once, without blocking on an accelerator.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from adapters.packed import TokenLayout, project
from training import streams

POSITION_OFFSET = 2  # RoBERTa numbers real positions from padding_idx + 1


@dataclass
class FlatBatch:
    input_ids: torch.Tensor  # (T, 1): one token per row, so that embeddings see T rows
    positions: torch.Tensor  # (T, 1)
    example: torch.Tensor  # (T,) example (member-major) of each token
    position: torch.Tensor  # (T,) position of each token in its sequence
    pad_index: torch.Tensor  # (T,) where each token sits in the (N, L_max) re-padded layout
    slot_token: torch.Tensor  # (N * L_max,) the token each re-padded slot reads (padding: token 0)
    key_mask: torch.Tensor  # (N, 1, 1, L_max) float: 0 on real keys, -inf on padding (added to scores)
    starts: torch.Tensor  # (N,) the <s> token of each sequence
    layout: TokenLayout
    examples: int
    longest: int
    example_keys: torch.Tensor | None = None  # (N,) int32 dropout key of each example (training/streams.py)
    token_keys: torch.Tensor | None = None  # (T,) int32 dropout key of each token
    cache: dict = field(default_factory=dict)  # what the layers derive from it once per step

    def head_bias(self, heads: int) -> torch.Tensor:
        """key_mask for every head, (N·heads, 1, L_max): what a batched matmul adds to the scores."""
        if heads not in self.cache:
            self.cache[heads] = self.key_mask.expand(-1, heads, -1, -1).reshape(-1, 1, self.longest)
        return self.cache[heads]

    @property
    def tokens(self) -> int:
        return self.input_ids.shape[0]


def to_device(host: torch.Tensor, device) -> torch.Tensor:
    """A host tensor on `device`: on an accelerator pinned, then copied without blocking the host."""
    if torch.device(device).type == "cpu":
        return host
    return host.pin_memory().to(device, non_blocking=True)


def flatten(batches: list[dict], device, example_keys: np.ndarray | None = None) -> FlatBatch:
    """One token stream of K right-padded sub-batches (each member's B sequences, in order). With
    `example_keys` (the uint32 key of each of the K·B examples, training/streams.py), the batch also
    carries the int32 keys of its examples and tokens.

    Every index is computed on the host and copied to the device at once: one int64 buffer (pinned
    and copied without blocking on an accelerator), whose views are the batch's tensors."""
    masks = [b["attention_mask"].numpy().astype(bool) for b in batches]
    ids = np.concatenate([b["input_ids"].numpy()[m] for b, m in zip(batches, masks)])
    lengths = np.concatenate([m.sum(1) for m in masks])
    per_member = np.array([m.sum() for m in masks])
    examples, tokens, longest = len(lengths), len(ids), int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    example = np.repeat(np.arange(examples), lengths)
    position = np.arange(tokens) - np.repeat(starts, lengths)
    member_starts = np.concatenate([[0], np.cumsum(per_member)[:-1]])
    member = np.repeat(np.arange(len(batches)), per_member)
    widest = int(per_member.max())
    in_member = np.arange(tokens) - member_starts[member]
    key_mask = np.arange(longest)[None, :] < lengths[:, None]
    pad_index = example * longest + position
    pad_slot_token = np.zeros(examples * longest, dtype=np.int64)
    pad_slot_token[pad_index] = np.arange(tokens)
    grid_index = member * widest + in_member
    slot_token = np.zeros(len(batches) * widest, dtype=np.int64)  # a padding slot reads token 0
    slot_token[grid_index] = np.arange(tokens)
    parts = [ids, position + POSITION_OFFSET, example, position, pad_index, pad_slot_token, starts, grid_index,
             slot_token, member, key_mask.reshape(-1)]
    if example_keys is not None:  # int32 bit patterns, exact in int64
        token_keys = streams.host_token_keys(example_keys, example, position)
        parts += [example_keys.view(np.int32), token_keys.view(np.int32)]
    buffer = to_device(torch.from_numpy(np.concatenate([np.asarray(part, dtype=np.int64) for part in parts])), device)
    views = buffer.split([len(part) for part in parts])
    (input_ids, positions, example_t, position_t, pad_index_t, pad_slot_t, starts_t, grid_t, slot_t, member_t,
     key_bits) = views[:11]
    keys = [v.to(torch.int32) for v in views[11:]] if example_keys is not None else [None, None]
    return FlatBatch(input_ids=input_ids.view(-1, 1), positions=positions.view(-1, 1), example=example_t,
                     position=position_t, pad_index=pad_index_t, slot_token=pad_slot_t,
                     key_mask=torch.log(key_bits).view(examples, 1, 1, longest),  # log 1 = 0, log 0 = -inf
                     starts=starts_t, layout=TokenLayout(grid_t, len(batches), widest, tokens, slot_t, member_t),
                     examples=examples, longest=longest, example_keys=keys[0], token_keys=keys[1])


_split_indices: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
QVK = (0, 2, 1)  # where q, k and v sit among the projected columns (q, v, k)


def _split_index(heads: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Index tensors (3, 1, 1, 1) picking q, k, v among the columns and (1, 1, heads, 1) over the heads,
    made once."""
    key = (heads, str(device))
    if key not in _split_indices:
        _split_indices[key] = (torch.tensor(QVK, device=device).view(3, 1, 1, 1),
                               torch.arange(heads, device=device).view(1, 1, heads, 1))
    return _split_indices[key]


class Repad(torch.autograd.Function):
    """(T, 3d) projected tokens -> q, k, v stacked, (3, N, heads, L_max, size), one gather each way.

    Every slot of the re-padded layout reads a token (a padding slot reads token 0: any finite
    value does, its key is masked and its query dropped), so the forward is one gather and needs no
    zero fill. Backward reads each real token's slot of the three gradients and ignores the padding
    slots: their gradients are zero (masked keys have probability 0, dropped queries receive none).

    Forward: grid[c, n, h, l] = qkv[slot_token[n, l], block c, head h].  Backward: g_qkv[t, block c,
    head h] = g_grid[c, example[t], h, position[t]] (each real token is read by exactly one slot).
    """

    @staticmethod
    def forward(ctx, qkv, flat, which, head):
        heads, size = head.shape[2], qkv.shape[1] // (3 * head.shape[2])
        ctx.flat, ctx.which = flat, which
        # (3, N, heads, L_max, size), contiguous: each of q, k, v is a plain (N·heads, L_max, size) batch
        return qkv.view(-1, 3, heads, size)[flat.slot_token.view(1, flat.examples, 1, flat.longest), which, head]

    @staticmethod
    def backward(ctx, grads):
        flat, which = ctx.flat, ctx.which
        # (T, 3, heads, size), the three blocks in the order of the projected columns
        # (QVK is its own inverse)
        return grads[which.view(1, 3), flat.example[:, None], :, flat.position[:, None]].flatten(1), None, None, None


class FeedForward(torch.autograd.Function):
    """RoBERTa's frozen feed-forward block over the tokens, ``LN(drop(gelu(x W1ᵀ + b1) W2ᵀ + b2) + x)``,
    written out backward so that x's two gradients (through the block and the residual) come out
    of one addmm instead of two kernels and a sum. The weights are frozen: no gradient for them.

    With h = x W1ᵀ + b1, y = mask·(gelu(h) W2ᵀ + b2), z = y + x: g_z = LN_backward(g, z),
    g_h = gelu'(h)·((mask·g_z) W2), g_x = g_z + g_h W1."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, w1, b1, w2, b2, mask, norm_weight, norm_bias, eps):
        h = torch.addmm(b1, x, w1.t()) if b1 is not None else x @ w1.t()
        y = torch.addmm(b2, F.gelu(h), w2.t()) if b2 is not None else F.gelu(h) @ w2.t()
        if mask is not None:
            y = y * mask.to(y.dtype)
        z = (y + x).float()  # LayerNorm runs in fp32 under autocast
        out, mean, rstd = torch.native_layer_norm(z, (z.shape[-1],), norm_weight, norm_bias, eps)
        ctx.save_for_backward(w1, w2, mask, h, z, mean, rstd, norm_weight, norm_bias)
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g):
        w1, w2, mask, h, z, mean, rstd, norm_weight, norm_bias = ctx.saved_tensors
        gz = torch.ops.aten.native_layer_norm_backward(g, z, (z.shape[-1],), mean, rstd, norm_weight, norm_bias,
                                                       [True, False, False])[0]
        gy = gz if mask is None else gz * mask
        gh = torch.ops.aten.gelu_backward(gy @ w2.to(gy.dtype), h)
        if torch.is_autocast_enabled(g.device.type):  # the residual's gradient stays fp32, as autograd keeps it
            return gz + gh @ w1.to(gh.dtype), None, None, None, None, None, None, None, None
        return torch.addmm(gz.to(gh.dtype), gh, w1.to(gh.dtype)), None, None, None, None, None, None, None, None


def feed_forward(layer, x: torch.Tensor) -> torch.Tensor:
    """The layer's feed-forward block and residual LayerNorm: one FeedForward node where everything
    in it is frozen, the activation is GELU and the dropout a keyed one (or off); else the modules."""
    ffn, inner = layer.output, layer.intermediate
    dropout = ffn.dropout
    dropout_off = not dropout.training or getattr(dropout, "p", 0) == 0
    token_stream = isinstance(dropout, streams.KeyedDropout) and dropout.drawing() and \
        dropout.streams.tokens is not None and x.shape[0] == dropout.streams.tokens.shape[0]
    act = getattr(inner.intermediate_act_fn, "act", None)
    frozen = not any(p.requires_grad for m in (inner.dense, ffn.dense, ffn.LayerNorm) for p in m.parameters())
    if frozen and act is F.gelu and (token_stream or dropout_off) and isinstance(ffn.LayerNorm, torch.nn.LayerNorm):
        mask = dropout.scaled_mask(x) if token_stream else None  # (this is the dropout's call of the step)
        return FeedForward.apply(x, inner.dense.weight, inner.dense.bias, ffn.dense.weight, ffn.dense.bias, mask,
                                 ffn.LayerNorm.weight, ffn.LayerNorm.bias, ffn.LayerNorm.eps)
    return ffn.LayerNorm(ffn.dropout(ffn.dense(inner(x))) + x)


class KeyedAttention(torch.autograd.Function):
    """streams.attention's explicit softmax with keyed dropout on the probabilities, over the stacked
    (3, N, heads, L_max, size) q, k, v of Repad, as batched matmuls over N·heads contiguous blocks
    (the scaling and the key mask folded into the first: the same numbers in fp32). Written out
    backward so that the gradients of q, k and v land in one stacked tensor (what Repad's backward
    reads) and the scaling rides on the matmuls.

    Forward: P = softmax(α q kᵀ + bias), out = (P·mask) v.  Backward: g_v = (P·mask)ᵀ g,
    g_S = P·(G − rowsum(G·P)) with G = mask·(g vᵀ) (softmax's backward), g_q = α g_S k, g_k = α g_Sᵀ q."""

    @staticmethod
    def forward(ctx, grid, bias, mask, scaling):
        _, examples, heads, longest, size = grid.shape
        q, k, v = grid.view(3, examples * heads, longest, size).unbind(0)
        probs = F.softmax(torch.baddbmm(bias, q, k.mT, alpha=scaling), dim=-1, dtype=torch.float32).to(q.dtype)
        dropped = probs * mask.view(probs.shape).to(probs.dtype)
        ctx.save_for_backward(grid, probs, dropped, mask)
        ctx.scaling = scaling
        return torch.bmm(dropped, v).view(grid.shape[1:])

    @staticmethod
    def backward(ctx, g):
        grid, probs, dropped, mask = ctx.saved_tensors
        q, k, v = grid.view(3, -1, *grid.shape[3:]).unbind(0)
        g = g.reshape(v.shape)
        grads = torch.empty((3, *v.shape), dtype=g.dtype, device=g.device)
        torch.bmm(dropped.mT, g, out=grads[2])
        g_scores = torch.bmm(g, v.mT).mul_(mask.view(probs.shape))
        g_scores = torch._softmax_backward_data(g_scores, probs, -1, probs.dtype)
        grads[0].baddbmm_(g_scores, k, beta=0, alpha=ctx.scaling)  # (uninitialised, but beta = 0 ignores it)
        grads[1].baddbmm_(g_scores.mT, q, beta=0, alpha=ctx.scaling)
        return grads.view(grid.shape), None, None, None


def keyed_attention(attention, grid: torch.Tensor, flat: FlatBatch) -> torch.Tensor:
    """The context (T, d) of the real tokens, read straight from KeyedAttention's (N, heads, L_max, size)."""
    _, examples, heads, longest, _ = grid.shape
    mask = attention.dropout.keyed_mask((examples, heads, longest, longest))
    context = KeyedAttention.apply(grid, flat.head_bias(heads), mask, attention.scaling)
    return context[flat.example, :, flat.position].flatten(1)


def encoder_layer(layer, x: torch.Tensor, flat: FlatBatch) -> torch.Tensor:
    """RoBERTa's layer over (T, d) tokens: the modules' own weights, attention re-padded per sequence."""
    attention = layer.attention.self
    heads, size = attention.num_attention_heads, attention.attention_head_size
    width = heads * size

    # q, k and v re-padded together: (T, 3d) -> 3 × (N, heads, L_max, size), one gather
    # q, v, k: the adapted ones (LoRA's usual targets) side by side, so that a pack gathers their updates at once
    qvk = project([attention.query, attention.value, attention.key], x)  # one node: adapters/packed.py
    grid = Repad.apply(qvk, flat, *_split_index(heads, x.device))
    dropout = attention.dropout.p if attention.training else 0.0
    if not dropout:  # SDPA, as streams.attention calls it; the context read straight from its (N, heads, L_max, size) result
        context = F.scaled_dot_product_attention(*grid.unbind(0), attn_mask=flat.key_mask, scale=attention.scaling)
        context = context[flat.example, :, flat.position].flatten(1)
    elif streams.keyed(attention.dropout) and not torch.is_autocast_enabled(x.device.type):
        context = keyed_attention(attention, grid, flat)
    else:
        q, k, v = grid.unbind(0)
        context, _ = streams.attention(attention, q, k, v, flat.key_mask, scaling=attention.scaling, dropout=dropout)
        context = context.reshape(flat.examples * flat.longest, width).index_select(0, flat.pad_index)
    out = layer.attention.output
    x = out.LayerNorm(out.dropout(out.dense(context)) + x)
    return feed_forward(layer, x)


def forward(model, flat: FlatBatch) -> torch.Tensor:
    """Logits (N, labels) of a RoBERTa sequence classifier over a flat batch."""
    from adapters.packed import tokens
    roberta = model.roberta
    with tokens(flat.layout):
        x = roberta.embeddings(input_ids=flat.input_ids, position_ids=flat.positions)[:, 0]
        for layer in roberta.encoder.layer:
            x = encoder_layer(layer, x, flat)
        head = getattr(model, "classifier")
        return head(x.index_select(0, flat.starts).unsqueeze(1))
