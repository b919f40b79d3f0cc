"""Per-run random streams for dropout: every mask is a pure function of (run seed, epoch, step, example,
module, element), never of the shared global generator, so a run's masks do not depend on the runs
packed beside it, on the padded length of its batch, or on the device.

A counter-based generator: a 32-bit integer hash (Mueller's `hash32`, two multiply-xorshift rounds)
of the key chain seed → epoch → step → example row → module name → each coordinate of the element.
Each coordinate is mixed in on its own, so position (t, h) of a (B, L, d) activation draws the same
number whatever L is. Values stay in [0, 2³²) inside int64 lanes, so no product overflows.

`install(model)` swaps every `nn.Dropout` of a model (hidden, attention, classifier, adapter input)
for a :class:`KeyedDropout` and routes attention through :func:`attention` (SDPA without dropout,
an explicit softmax with keyed dropout in training). The training loop names the rows of each step
with :func:`rows`; outside it (e.g. a model used on its own) dropout falls back to `F.dropout`.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

MASK32 = 0xFFFFFFFF
MULT = 0x45D9F3B  # < 2³¹: a product with a 32-bit value stays below 2⁶³
ATTENTION = "keyed_sdpa"

_rows: torch.Tensor | None = None  # the key of each example of the current training batch
_tokens: torch.Tensor | None = None  # the key of each token of a flat batch (training/flat.py)
_modules: dict[int, int] = {}  # module key -> its row in the tables of (module, key) keys
_tables: dict[str, torch.Tensor] = {}  # this step's mix(key ^ module key), built at its first dropout


def mix(x):
    """Mueller's 32-bit integer hash, on Python ints or int64 tensors holding values < 2³²."""
    x = ((x >> 16) ^ x) * MULT & MASK32
    x = ((x >> 16) ^ x) * MULT & MASK32
    return (x >> 16) ^ x


def chain(*parts: int) -> int:
    """One 32-bit key from a sequence of non-negative integers."""
    key = 0x9E3779B9
    for part in parts:
        key = mix(key ^ (part & MASK32))
    return key


def name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def row_keys(seeds: list[int], epoch: int, step: int, batch: int, device) -> torch.Tensor:
    """The keys of K·B rows: member k's example b gets chain(seed_k, epoch, step) mixed with b."""
    members = torch.tensor([chain(seed, epoch, step) for seed in seeds], dtype=torch.int64, device=device)
    examples = torch.arange(batch, dtype=torch.int64, device=device)
    return mix(members[:, None] ^ examples).reshape(-1)


@contextmanager
def rows(keys: torch.Tensor | None, tokens: torch.Tensor | None = None):
    """Within this block, row i of a dropout input belongs to the stream `keys[i]` (one per example),
    or, for an input with one row per token of a flat batch, to `tokens[i]`."""
    global _rows, _tokens, _tables
    previous, (_rows, _tokens, _tables) = (_rows, _tokens, _tables), (keys, tokens, {})
    try:
        yield
    finally:
        _rows, _tokens, _tables = previous


def module_rows(module: int, rows: int) -> torch.Tensor:
    """The keys of the current `rows` rows (examples, or tokens of a flat batch) for one module: all
    modules' at once at a step's first dropout (a small table, a few kernels), a row of it (a view)
    after that."""
    kind = "tokens" if _tokens is not None and rows == _tokens.shape[0] else "rows"
    keys = _tokens if kind == "tokens" else _rows
    if keys.shape[0] != rows:
        raise ValueError(f"a dropout input of {rows} rows, but {keys.shape[0]} row keys")
    table = _tables.get(kind)
    if table is None or module not in _modules or _modules[module] >= table.shape[0]:
        _modules.setdefault(module, len(_modules))
        modules = torch.tensor(list(_modules), dtype=torch.int64, device=keys.device)
        _tables[kind] = table = mix(keys[None, :] ^ modules[:, None])
    return table[_modules[module]]


_coordinates: dict[tuple, torch.Tensor] = {}


def coordinate_hashes(shape: tuple[int, ...], device) -> torch.Tensor:
    """A hash of each element's coordinates (each one mixed in on its own, so the value at a position
    does not depend on the sizes), for a shape of up to `shape`: cached at the largest size asked for
    so far, each size rounded up to a power of two (a longer batch rebuilds it a few times in a run, not
    at each new longest length), and sliced (a view)."""
    key = (len(shape), str(device))
    cached = _coordinates.get(key)
    if cached is None or any(have < want for have, want in zip(cached.shape, shape)):
        size = tuple(1 << max(0, n - 1).bit_length() for n in shape)
        size = size if cached is None else tuple(max(a, b) for a, b in zip(cached.shape, size))
        h = torch.full((), 0x2545F491, dtype=torch.int64, device=device)
        for dim, n in enumerate(size):
            coordinate = torch.arange(n, dtype=torch.int64, device=device).view(*([1] * dim), n)
            h = mix((h.unsqueeze(-1) * MULT & MASK32) ^ coordinate)
        _coordinates[key] = cached = h
    return cached[tuple(slice(0, n) for n in shape)]


def keep_mask(rows: torch.Tensor, shape: torch.Size, p: float) -> torch.Tensor:
    """Which elements of a `shape` tensor dropout keeps, with probability 1 - p: one multiply-xorshift
    round over (the row's key for this module) ^ (the coordinates' hash), compared to p·2³².
    `rows` may carry leading dimensions of its own (several modules' rows at once)."""
    x = rows.view(*rows.shape, *([1] * (len(shape) - 1))) ^ coordinate_hashes(tuple(shape[1:]), rows.device)
    x = (x ^ (x >> 15)) * MULT & MASK32
    return x >= int(p * 2**32)


GROUP_ELEMENTS = 2**26  # the most mask elements drawn at once (their int64 intermediates: 512 MiB)
_sites: dict[int, tuple] = {}  # module key -> (rows kind, rank, p) of its dropout input, first use first
_group_index: dict[tuple, torch.Tensor] = {}  # a group's rows in the key table, on the device


def scaled_keep_mask(module: int, shape: torch.Size, p: float) -> torch.Tensor:
    """The scaled keep mask (1/(1 - p) where kept, else 0; float32) of one module's dropout input.

    The modules seen at earlier steps whose input has the same kind of rows, rank and p (the hidden
    and adapter dropouts over a flat batch's tokens; the attention probabilities of every layer)
    draw their masks together with this one, up to GROUP_ELEMENTS: one hash over a stack of their
    key rows instead of one per module. The masks are the same, each one a pure function of its
    keys; they wait in the step's tables until their module asks (one that asks with another shape
    than foreseen gets its own, drawn then)."""
    masks, done = _tables.setdefault("masks", {}), _tables.setdefault("masks_done", set())
    mask = masks.pop(module, None)
    done.add(module)
    if mask is not None and mask.shape == shape:
        return mask
    module_rows(module, shape[0])  # registers the module in the key table
    kind = "tokens" if _tokens is not None and shape[0] == _tokens.shape[0] else "rows"
    signature = _sites[module] = (kind, len(shape), p)
    room = max(1, GROUP_ELEMENTS // max(1, shape.numel()))
    group = [module] + [m for m, sig in _sites.items()
                        if sig == signature and m not in done and m not in masks][:room - 1]
    table = _tables[kind]
    index = _group_index.get((tuple(group), str(table.device)))
    if index is None:
        index = _group_index[(tuple(group), str(table.device))] = torch.tensor(
            [_modules[m] for m in group], dtype=torch.int64, device=table.device)
    scaled = keep_mask(table.index_select(0, index), shape, p) * (1.0 / (1.0 - p))
    for m, drawn in zip(group[1:], scaled[1:]):
        masks[m] = drawn
    return scaled[0]


class KeyedDropout(nn.Module):
    """`nn.Dropout` whose mask comes from the rows' own streams (see the module docstring)."""

    def __init__(self, p: float, name: str):
        super().__init__()
        self.p, self.name, self.key = p, name, name_key(name)

    def scaled_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """What `forward` multiplies x by (keep / (1 - p)) for an input over the tokens of a flat
        batch, so that a fused layer can apply it and reuse it in its backward; None where forward
        does something else (off, no keys, not the token stream)."""
        if not self.training or self.p == 0 or _rows is None or _tokens is None or x.shape[0] != _tokens.shape[0]:
            return None
        return scaled_keep_mask(self.key, x.shape, self.p).to(x.dtype)

    def keyed_mask(self, shape: tuple[int, ...]) -> torch.Tensor:
        """What `forward` multiplies a `shape` input by while training with keys (see :func:`keyed`),
        for a layer that applies it itself."""
        return scaled_keep_mask(self.key, torch.Size(shape), self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if _rows is None:
            return F.dropout(x, self.p, True)
        return x * scaled_keep_mask(self.key, x.shape, self.p).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}, name={self.name!r}"


def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """RoBERTa's attention: SDPA when nothing is dropped, else an explicit softmax whose probabilities
    go through the module's KeyedDropout (the same numbers on every device)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    if not module.training or dropout == 0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                      dropout=0.0, **kwargs)
    weights = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.size(-1) ** -0.5)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
        else:
            weights = weights + attention_mask
    probs = module.dropout(F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype))
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


def keyed(module: nn.Module) -> bool:
    """Whether `module` is a keyed dropout that has keys to draw from now."""
    return isinstance(module, KeyedDropout) and _rows is not None


def active(model: nn.Module) -> bool:
    """Whether any keyed dropout of `model` drops anything now (training, p > 0): if none does, a
    step needs no keys at all."""
    return model.training and any(isinstance(m, KeyedDropout) and m.p > 0 for m in model.modules())


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def install(model: nn.Module) -> nn.Module:
    """Every nn.Dropout of `model` becomes a KeyedDropout named after its module path; attention runs
    through :func:`attention`. Idempotent; returns the model."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, child_name, KeyedDropout(child.p, f"{name}.{child_name}".lstrip(".")))
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "_attn_implementation", None) != ATTENTION:
        _register()
        config._attn_implementation = ATTENTION
    return model
