"""Packs: several runs trained in one pass over a shared frozen backbone.

Runs that share task, model, method shape, batch size and epochs, and differ in seed, learning rate
or weight decay, keep their own adapter layers, head, optimiser, schedule, data order and run
directory; the batch holds one sub-batch per run, and the frozen matmuls run once over all of them.
Sub-batches never mix (attention is per example), and each run's loss only reaches its own
parameters, so with dropout off a pack of K gives the numbers of K separate runs. A pack of one is
the plain single run: no packed modules are installed at all.

The backbone holds one run's modules at a time (`use(k)`: saving, counting, norms work unchanged on
it) or the packed modules (`use_pack()`: training and evaluation).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import adapters
from adapters.inject import set_submodule
from training.config import compose


class PackedLayer(nn.Module):
    """K adapter layers over one frozen linear: the input holds K equal sub-batches, in order.

    The frozen matmul runs once for all K; the K updates B_k A_k x_k run as two batched matmuls
    (a loop over the runs' own `update` only when an adapter applies dropout to its input)."""

    def __init__(self, layers: list[adapters.AdapterLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.base = layers[0].base  # shared by all of them
        self.batched = all(isinstance(layer.dropout, nn.Identity) for layer in layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        runs = len(self.layers)
        flat = x.reshape(runs, -1, x.shape[-1])  # row k: run k's sub-batch, all its tokens
        scales = [layer.base_scale() for layer in self.layers]
        if scales[0] is None:
            frozen = self.base(flat)
        else:  # SymLoRA: λ_k · (W0 x) + b
            frozen = F.linear(flat, self.base.weight)
            frozen = frozen * torch.stack(scales).view(runs, 1, 1).to(frozen.dtype)
            if self.base.bias is not None:
                frozen = frozen + self.base.bias
        if self.batched:
            b, a = (torch.stack(f) for f in zip(*(layer.factors() for layer in self.layers)))
            update = torch.bmm(torch.bmm(flat.to(a.dtype), a.mT), b.mT)
        else:
            update = torch.stack([layer.update(part) for layer, part in zip(self.layers, flat)])
        return (frozen + update.to(frozen.dtype)).reshape(*x.shape[:-1], -1)


class PackedHead(nn.Module):
    """K classification heads, one per sub-batch."""

    def __init__(self, heads: list[nn.Module]):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, features: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.cat([head(part, **kwargs) for head, part in
                          zip(self.heads, features.chunk(len(self.heads)))])


@dataclass(eq=False)  # a run is itself, not its field values
class Member:
    """One run of a pack: its configuration, directory, modules and optimisation state."""
    cfg: object
    directory: object
    layers: dict[str, nn.Module]
    head: nn.Module
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object = None
    best: dict = field(default_factory=lambda: {"epoch": None, "score": float("nan"), "validation": {}})
    history: list[dict] = field(default_factory=list)
    failure: str | None = None
    finished: bool = False
    info: dict = field(default_factory=dict)


class Pack:
    def __init__(self, model: nn.Module, head_name: str):
        self.model, self.head_name = model, head_name
        self.members: list[Member] = []
        self._packed: tuple[list[Member], dict[str, PackedLayer], PackedHead] | None = None

    def add(self, cfg, directory, model: nn.Module) -> Member:
        """Take `model`'s adapter layers and head as a new member; its frozen linears are replaced by
        the shared backbone's (the first member's model *is* the backbone)."""
        layers = dict(adapters.adapter_layers(model))
        if self.members:
            for name, layer in layers.items():
                layer.base = self.members[0].layers[name].base
        member = Member(cfg, directory, layers, getattr(model, self.head_name))
        self.members.append(member)
        return member

    def use(self, member: Member) -> nn.Module:
        """Install one member's modules in the backbone; returns the backbone."""
        for name, layer in member.layers.items():
            set_submodule(self.model, name, layer)
        setattr(self.model, self.head_name, member.head)
        return self.model

    def use_pack(self, members: list[Member]) -> nn.Module:
        """Install the packed modules of `members` (a pack of one installs that member's own)."""
        if len(members) == 1:
            return self.use(members[0])
        if self._packed is None or self._packed[0] != members:  # kept: torch.compile guards on identity
            layers = {name: PackedLayer([m.layers[name] for m in members]) for name in members[0].layers}
            self._packed = (list(members), layers, PackedHead([m.head for m in members]))
        _, layers, head = self._packed
        for name, layer in layers.items():
            set_submodule(self.model, name, layer)
        setattr(self.model, self.head_name, head)
        return self.model


def concat_batches(batches: list[dict], pad_token_id: int) -> dict:
    """One batch of K sub-batches, right-padded to the longest (masked positions change nothing)."""
    if len(batches) == 1:
        return batches[0]
    length = max(b["input_ids"].shape[1] for b in batches)
    pad = lambda t, value: F.pad(t, (0, length - t.shape[1]), value=value)  # noqa: E731
    return {"input_ids": torch.cat([pad(b["input_ids"], pad_token_id) for b in batches]),
            "attention_mask": torch.cat([pad(b["attention_mask"], 0) for b in batches])}


def pack_jobs(cfg, overrides: list[str]) -> list[tuple[object, list[str]]]:
    """The runs `pack.*` asks for, each as (config, overrides) exactly as if run alone: the crossing
    of `pack.seed`, `pack.lr` and `pack.weight_decay`, plus each of `pack.members`. No pack: one run."""
    spec = cfg.get("pack") or {}
    keep = [o for o in overrides if not o.lstrip("+~").startswith("pack.")]
    axes = [[f"{key}={value}" for value in spec[name]] for name, key in
            (("seed", "seed"), ("lr", "lr"), ("weight_decay", "optim.weight_decay")) if spec.get(name)]
    members = [list(combo) for combo in itertools.product(*axes)] if axes else []
    members += [list(m) for m in spec.get("members") or []]
    if not members:
        return [(cfg, list(overrides))]
    key = lambda o: o.split("=", 1)[0].lstrip("+~")  # noqa: E731  (a member's own value wins)
    jobs = [[o for o in keep if key(o) not in {key(x) for x in m}] + m for m in members]
    return [(compose(job), job) for job in jobs]
