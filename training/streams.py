"""Per-run random streams for dropout: every mask is a pure function of (run seed, epoch, step, example,
module, call of the module in the step, element), never of the shared global generator, so a run's
masks do not depend on the runs packed beside it, on the padded length of its batch, or on the device.

The hash. A counter-based generator (the idea of Salmon et al., "Parallel random numbers: as easy as
1, 2, 3", SC 2011) built from MurmurHash3's 32-bit finaliser `fmix32` (Appleby,
https://github.com/aappleby/smhasher, MurmurHash3.cpp): two xor-shift-multiply rounds and a final
xor-shift, a bijection of 32-bit words in which every input bit flips every output bit with
probability close to 1/2.

- A row's key: `chain` folds seed → epoch → step (on the host), then fmix32(key ^ example) (and, on a
  flat token stream, fmix32(example key ^ hash(position)) per token).
- A site's row key: fmix32(row key ^ site key); a site is one call of one dropout module in the step
  (the module path's SHA-256, and for its n-th call in a step `chain(module key, n)`), so a module
  called twice (RoBERTa's classification head) draws two independent masks, as `nn.Dropout` does.
- An element: fmix32(site row key ^ coordinate hash), kept where the result, read as a signed
  int32, is >= p·2³² - 2³¹ (probability 1 - p). The
  coordinate hash folds the element's coordinates within the row one by one, so it does not depend
  on the sizes (a (B, L, d) input draws the same number at (b, t, h) whatever L is); the full
  finaliser over the combined word leaves no correlation between fixed coordinate pairs
  (tests/test_streams.py measures it against `torch.bernoulli`).

Only integer xor, logical shifts and wrapping 32-bit multiplies: the same bits on every device and
backend. Tensors hold the words as int32 (a multiply wraps modulo 2³² as uint32's would; a logical
shift is an arithmetic shift and a mask), 4 bytes per element.

The state (the keys of the current step, the tables of site keys, the grouping of sites, the cached
coordinate hashes) is a :class:`DropoutStreams` owned by the model whose dropouts `install(model)`
made keyed (a pack: its backbone), so two runs or packs in one process never share tables. The
training loop names each step's rows with :func:`drawing`; outside it (e.g. a model used on its own)
dropout falls back to `F.dropout`.
"""
from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from contextlib import ExitStack, contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MASK32 = 0xFFFFFFFF
FMIX1, FMIX2 = 0x85EBCA6B, 0xC2B2AE35  # MurmurHash3's fmix32 multipliers
LITTLE_ENDIAN = sys.byteorder == "little"
ATTENTION = "keyed_sdpa"
# the most mask elements hashed at once: their int32 word and one int32 shift temporary, 8 bytes per
# element (twice a float32 mask's bytes), 512 MiB at most; a larger group or site is drawn in chunks
GROUP_ELEMENTS = 2**26


def signed(value: int) -> int:
    """A 32-bit word as the int32 that holds the same bits."""
    value &= MASK32
    return value - (1 << 32) if value >= 1 << 31 else value


def _xorshift_(x: torch.Tensor, bits: int, scratch: list) -> None:
    """x ^= x >> bits in place over int32 words, the shift a logical one (an arithmetic shift and a
    mask, in a scratch word per element made once). For 16 bits on a little-endian machine (every CPU
    and GPU torch runs on) it is the xor of each word's high half into its low half: one op over an
    int16 view, no scratch."""
    if bits == 16 and LITTLE_ENDIAN and x.dim() > 0 and x.is_contiguous():
        halves = x.view(torch.int16).unflatten(-1, (-1, 2))
        halves[..., 0].bitwise_xor_(halves[..., 1])
        return
    if not scratch:
        scratch.append(torch.empty_like(x))
    torch.bitwise_right_shift(x, bits, out=scratch[0]).bitwise_and_((1 << (32 - bits)) - 1)
    x.bitwise_xor_(scratch[0])


def mix(x):
    """fmix32 of Python ints, of numpy uint32 arrays, or in place of an int32 tensor (returned)."""
    if isinstance(x, torch.Tensor):
        scratch: list[torch.Tensor] = []
        for multiplier, bits in ((FMIX1, 16), (FMIX2, 13), (None, 16)):
            _xorshift_(x, bits, scratch)
            if multiplier is not None:
                x.mul_(signed(multiplier))
        return x
    if isinstance(x, np.ndarray):
        x = x.astype(np.uint32)
        x ^= x >> np.uint32(16)
        x *= np.uint32(FMIX1)
        x ^= x >> np.uint32(13)
        x *= np.uint32(FMIX2)
        return x ^ (x >> np.uint32(16))
    x &= MASK32
    x ^= x >> 16
    x = x * FMIX1 & MASK32
    x ^= x >> 13
    x = x * FMIX2 & MASK32
    return x ^ (x >> 16)


def chain(*parts: int) -> int:
    """One 32-bit key from a sequence of non-negative integers."""
    key = 0x9E3779B9
    for part in parts:
        key = mix(key ^ (part & MASK32))
    return key


def name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def host_row_keys(seeds: list[int], epoch: int, step: int, batch: int) -> np.ndarray:
    """The keys (uint32) of K·B rows, on the host: member k's example b gets fmix32(chain(seed_k,
    epoch, step) ^ b)."""
    members = np.array([chain(seed, epoch, step) for seed in seeds], dtype=np.uint32)
    return mix(members[:, None] ^ np.arange(batch, dtype=np.uint32)).reshape(-1)


def host_token_keys(example_keys: np.ndarray, example: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Each token's key (uint32): its example's key mixed with its position in the sequence (not in
    the stream, so that packing and padding do not move it)."""
    return mix(example_keys[example] ^ mix(position.astype(np.uint32) + np.uint32(0x2545F491)))


def as_tensor(keys: np.ndarray, device=None) -> torch.Tensor:
    """uint32 keys as the int32 tensor of the same bits."""
    return torch.from_numpy(np.ascontiguousarray(keys, dtype=np.uint32).view(np.int32)).to(device)


def row_keys(seeds: list[int], epoch: int, step: int, batch: int, device) -> torch.Tensor:
    """:func:`host_row_keys` as an int32 tensor on `device`."""
    return as_tensor(host_row_keys(seeds, epoch, step, batch), device)


class _Step:
    """What one step's draws share: the site key tables, the masks drawn ahead, the call counts."""

    def __init__(self):
        self.tables: dict[str, torch.Tensor] = {}  # rows kind -> (sites, rows) int32 site row keys
        self.masks: dict[int, torch.Tensor] = {}  # site -> its scaled mask, drawn with an earlier site's
        self.done: set[int] = set()
        self.calls: dict[int, int] = defaultdict(int)  # module key -> calls so far this step


class DropoutStreams:
    """The random streams of one run's or one pack's keyed dropouts (the module docstring says what
    a mask is a function of); shared by every :class:`KeyedDropout` that :func:`install` made in a
    model."""

    def __init__(self):
        self.rows: torch.Tensor | None = None  # the key of each example of the current training batch
        self.tokens: torch.Tensor | None = None  # the key of each token of a flat batch (training/flat.py)
        self.step: _Step | None = None
        self.sites: dict[int, int] = {}  # site key -> its row in the tables of site row keys
        self.site_keys: dict[str, torch.Tensor] = {}  # device -> the site keys, in that order (int32)
        self.signatures: dict[int, tuple] = {}  # site -> (rows kind, rank, p) of its input, first use first
        self.group_index: dict[tuple, torch.Tensor] = {}  # a group's rows in the key table, on the device
        self.coordinates: dict[tuple, torch.Tensor] = {}  # (rank, device) -> coordinate hashes (int32)

    @contextmanager
    def drawing(self, keys: torch.Tensor | None, tokens: torch.Tensor | None = None):
        """Within this block (one training step), row i of a dropout input belongs to the stream
        `keys[i]` (one per example), or, for an input with one row per token of a flat batch, to
        `tokens[i]` (int32 keys: :func:`row_keys`)."""
        previous = (self.rows, self.tokens, self.step)
        self.rows, self.tokens, self.step = keys, tokens, _Step()
        try:
            yield
        finally:
            self.rows, self.tokens, self.step = previous

    def site(self, module: int) -> int:
        """The site key of this call of `module`: the module key at its first call of the step, a
        key chained with the call's number after that."""
        calls = self.step.calls[module]
        self.step.calls[module] = calls + 1
        return module if calls == 0 else chain(module, calls)

    def _kind(self, rows: int) -> str:
        return "tokens" if self.tokens is not None and rows == self.tokens.shape[0] else "rows"

    def site_rows(self, site: int, rows: int) -> torch.Tensor:
        """The keys of the current `rows` rows (examples, or tokens of a flat batch) for one site: all
        known sites' at once at a step's first dropout (a small table), a row of it (a view) after."""
        kind = self._kind(rows)
        keys = self.tokens if kind == "tokens" else self.rows
        if keys.shape[0] != rows:
            raise ValueError(f"a dropout input of {rows} rows, but {keys.shape[0]} row keys")
        table = self.step.tables.get(kind)
        if table is None or site not in self.sites or self.sites[site] >= table.shape[0]:
            self.sites.setdefault(site, len(self.sites))
            sites = self.site_keys.get(str(keys.device))
            if sites is None or sites.shape[0] != len(self.sites):  # (made again only for a new site)
                sites = torch.tensor([signed(s) for s in self.sites], dtype=torch.int32, device=keys.device)
                self.site_keys[str(keys.device)] = sites
            self.step.tables[kind] = table = mix(keys[None, :] ^ sites[:, None])
        return table[self.sites[site]]

    def coordinate_hashes(self, shape: tuple[int, ...], device) -> torch.Tensor:
        """An int32 hash of each element's coordinates within a row (folded one by one, so the value at
        a position does not depend on the sizes), for a shape of up to `shape`: cached at the largest
        size asked for so far, each size rounded up to a power of two, and sliced (a view)."""
        key = (len(shape), str(device))
        cached = self.coordinates.get(key)
        if cached is None or any(have < want for have, want in zip(cached.shape, shape)):
            size = tuple(1 << max(0, n - 1).bit_length() for n in shape)
            size = size if cached is None else tuple(max(a, b) for a, b in zip(cached.shape, size))
            h = np.full((), 0x2545F491, dtype=np.uint32)
            for dim, n in enumerate(size):
                coordinate = np.arange(n, dtype=np.uint32).reshape(*([1] * dim), n)
                h = mix(mix(h[..., None] ^ np.uint32(0x9E3779B9)) ^ coordinate)
            self.coordinates[key] = cached = as_tensor(h, device)
        return cached[tuple(slice(0, n) for n in shape)]

    def draw(self, site_rows: torch.Tensor, shape: torch.Size, p: float) -> torch.Tensor:
        """The scaled keep masks (1/(1 - p) where kept, else 0; float32) of `site_rows` (S, rows) site
        row keys over `shape` inputs: (S, *shape). Hashed in chunks of rows of at most
        GROUP_ELEMENTS elements, each into the output's own rows."""
        coordinates = self.coordinate_hashes(tuple(shape[1:]), site_rows.device)
        keys = site_rows.reshape(-1)
        out = torch.empty((keys.shape[0], *shape[1:]), dtype=torch.float32, device=site_rows.device)
        per_row = max(1, coordinates.numel())
        chunk = max(1, GROUP_ELEMENTS // per_row)
        # kept where the word, read as a signed int32 (uniform over [-2³¹, 2³¹)), is >= p·2³² - 2³¹:
        # probability exactly 1 - p to 2⁻³², one comparison
        threshold = int(p * 2**32) - 2**31
        for start in range(0, keys.shape[0], chunk):
            rows = keys[start:start + chunk]
            x = mix(rows.view(-1, *([1] * coordinates.dim())) ^ coordinates)  # (one new int32 word each)
            torch.mul(x >= threshold, 1.0 / (1.0 - p), out=out[start:start + chunk])
            del x  # (freed before the next chunk's words are made)
        return out.view(*site_rows.shape[:-1], *shape)

    def scaled_mask(self, module: int, shape: torch.Size, p: float) -> torch.Tensor:
        """The scaled keep mask (float32) of this call of one module over a `shape` input.

        The sites seen at earlier steps whose input has the same kind of rows, rank and p (the hidden
        and adapter dropouts over a flat batch's tokens; the attention probabilities of every layer)
        draw their masks together with this one, up to GROUP_ELEMENTS: one hash over a stack of their
        key rows instead of one per site. The masks are the same, each one a pure function of its
        keys; they wait in the step's tables until their site asks (one that asks with another shape
        than foreseen gets its own, drawn then)."""
        site, step = self.site(module), self.step
        mask = step.masks.pop(site, None)
        step.done.add(site)
        if mask is not None and mask.shape == shape:
            return mask
        self.site_rows(site, shape[0])  # registers the site in the key table
        kind = self._kind(shape[0])
        signature = self.signatures[site] = (kind, len(shape), p)
        room = max(1, GROUP_ELEMENTS // max(1, shape.numel()))
        group = [site] + [s for s, sig in self.signatures.items()
                          if sig == signature and s not in step.done and s not in step.masks][:room - 1]
        table = step.tables[kind]
        index = self.group_index.get((tuple(group), str(table.device)))
        if index is None:
            index = self.group_index[(tuple(group), str(table.device))] = torch.tensor(
                [self.sites[s] for s in group], dtype=torch.int64, device=table.device)
        scaled = self.draw(table.index_select(0, index), shape, p)
        for s, drawn in zip(group[1:], scaled[1:]):
            step.masks[s] = drawn
        return scaled[0]


class KeyedDropout(nn.Module):
    """`nn.Dropout` whose mask comes from the rows' own streams (see the module docstring); each call
    in a step draws its own mask."""

    def __init__(self, p: float, name: str, streams: DropoutStreams | None = None):
        super().__init__()
        self.p, self.name, self.key = p, name, name_key(name)
        self.streams = streams if streams is not None else DropoutStreams()

    def drawing(self) -> bool:
        """Whether this call draws from keys (training, p > 0, inside :func:`drawing`)."""
        return self.training and self.p > 0 and self.streams.rows is not None

    def scaled_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """What `forward` multiplies x by (keep / (1 - p)) for an input over the tokens of a flat
        batch, so that a fused layer can apply it and reuse it in its backward (this counts as the
        call); None where forward does something else (off, no keys, not the token stream)."""
        tokens = self.streams.tokens
        if not self.drawing() or tokens is None or x.shape[0] != tokens.shape[0]:
            return None
        return self.streams.scaled_mask(self.key, x.shape, self.p).to(x.dtype)

    def keyed_mask(self, shape: tuple[int, ...]) -> torch.Tensor:
        """What `forward` multiplies a `shape` input by while drawing (this counts as the call), for a
        layer that applies it itself."""
        return self.streams.scaled_mask(self.key, torch.Size(shape), self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.streams.rows is None:
            return F.dropout(x, self.p, True)
        return x * self.streams.scaled_mask(self.key, x.shape, self.p).to(x.dtype)

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
    return isinstance(module, KeyedDropout) and module.streams.rows is not None


def active(model: nn.Module) -> bool:
    """Whether any keyed dropout of `model` drops anything now (training, p > 0): if none does, a
    step needs no keys at all."""
    return model.training and any(isinstance(m, KeyedDropout) and m.p > 0 for m in model.modules())


def of(model: nn.Module) -> list[DropoutStreams]:
    """The streams of `model`'s keyed dropouts (one, unless modules of several installs were mixed)."""
    found = {id(m.streams): m.streams for m in model.modules() if isinstance(m, KeyedDropout)}
    return list(found.values())


@contextmanager
def drawing(sources: list[DropoutStreams], keys: torch.Tensor | None, tokens: torch.Tensor | None = None):
    """:meth:`DropoutStreams.drawing` for each of `sources` (:func:`of` a model) at once: one step."""
    with ExitStack() as stack:
        for source in sources:
            stack.enter_context(source.drawing(keys, tokens))
        yield


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def install(model: nn.Module, streams: DropoutStreams | None = None) -> nn.Module:
    """Every nn.Dropout of `model` becomes a KeyedDropout named after its module path, all drawing from
    one DropoutStreams (`streams`, else the one of the model's keyed dropouts already there, else a
    new one); attention runs through :func:`attention`. Idempotent; returns the model."""
    if streams is None:
        existing = of(model)
        streams = existing[0] if existing else DropoutStreams()
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, child_name, KeyedDropout(child.p, f"{name}.{child_name}".lstrip("."), streams))
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "_attn_implementation", None) != ATTENTION:
        _register()
        config._attn_implementation = ATTENTION
    return model
