"""Packs: several runs trained in one pass over a shared frozen backbone.

Runs that share task, model, method shape, batch size and epochs, and differ in seed, learning rate
or weight decay, keep their own adapter layers, head, optimiser state, schedule, data order, random
streams (training/streams.py) and run directory; the batch holds one sub-batch per run, and the
frozen matmuls run once over all of them. Sub-batches never mix (attention is per example), each
run's loss only reaches its own parameters and each dropout mask comes from its own seed, so a pack
of K gives the numbers of K separate runs, dropout on. A lone run is a pack of one, the same code.

The members' trainable tensors live in one bank (training/fused.py). The backbone holds one run's
own modules at a time (`use(member)`: saving, loading, counting, norms work unchanged on it) or the
packed modules over the bank (`use_pack()`: training and evaluation; adapters/packed.py).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import adapters
from adapters.inject import set_submodule
from adapters.packed import PackedHead, PackedLayer, own_tensors
from training import streams
from training.pack_rules import override_key
from training.config import compose
from training.fused import Bank, MemberOptimizer, MemberSchedule, decayed


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
    """The fused engine's runs (training/engine.py), with the interface training/fit.py drives (the
    same as training/reference.py ``Solo``)."""

    name = "fused"

    def __init__(self, model: nn.Module, head_name: str):
        self.model, self.head_name = model, head_name
        self.members: list[Member] = []
        self._packed: tuple[Bank, dict[str, PackedLayer], PackedHead] | None = None
        self._bank: Bank | None = None

    # what training/fit.py drives ------------------------------------------------------------------
    def prepare(self, members: list[Member], *, total_steps: int, warmup_steps: int, device) -> None:
        self._bank = self.bank(members, total_steps=total_steps, warmup_steps=warmup_steps, device=device)

    def net(self, members: list[Member]) -> nn.Module:
        return self.use_pack(members, self._bank)

    def train_epoch(self, model, members, loaders, **options) -> dict:
        from training.loop import train_epoch
        return train_epoch(model, members, self._bank, loaders, **options)

    def add(self, cfg, directory, model: nn.Module) -> Member:
        """Take `model`'s adapter layers and head as a new member; its frozen linears are replaced by
        the shared backbone's (the first member's model *is* the backbone). Its dropouts become keyed
        ones (training/streams.py)."""
        extras = [name for name, _ in adapters.head_modules(model)[1:]]
        if self.members and extras:  # they would stay the first member's: refuse, never pack wrong
            raise ValueError(f"runs whose head has modules besides {self.head_name} ({', '.join(extras)}) "
                             "cannot be packed; train them one by one (training/run.py does)")
        streams.install(model)
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

    def bank(self, members: list[Member], *, total_steps: int, warmup_steps: int, device) -> Bank:
        """One bank for `members` (their parameters become views of its rows); each member's
        `optimizer` and `scheduler` become its slice of it."""
        params = [[(n, p) for n, p in self.use(m).named_parameters() if p.requires_grad] for m in members]
        flags = decayed(self.use(members[0]))
        optim = members[0].cfg.optim
        bank = Bank(params, [flags[id(p)] for _, p in params[0]], lrs=[m.cfg.lr for m in members],
                    weight_decays=[m.cfg.optim.weight_decay for m in members], betas=optim.betas,
                    eps=optim.eps, total_steps=total_steps, warmup_steps=warmup_steps, device=device)
        for k, member in enumerate(members):
            member.optimizer, member.scheduler = MemberOptimizer(bank, k), MemberSchedule(bank, k)
        return bank

    def use_pack(self, members: list[Member], bank: Bank) -> nn.Module:
        """Install the packed modules of `members` over `bank` (built once per bank: torch.compile
        guards on module identity). A lone run whose trained parameters are not all in adapter layers
        and the classifier trains its own parameters instead: methods that train the backbone itself
        (bitfit, full: never packed) and heads with extra modules (DistilBERT's pre_classifier...:
        never packed, `add`)."""
        first = members[0]
        owned = tuple(f"{name}." for name in first.layers) + (f"{self.head_name}.",)
        if not all(name.startswith(owned) for name in bank.names):
            if len(members) > 1:
                raise ValueError("runs that train the backbone itself cannot be packed")
            model = self.use(first)
            trained = dict(model.named_parameters())
            bank.own_leaves([trained[name] for name in bank.names])
            return model
        if self._packed is None or self._packed[0] is not bank:
            def tensors(prefix: str, modules: list[nn.Module]) -> dict[str, torch.Tensor]:
                out = {}
                for name in own_tensors(modules[0]):
                    full = f"{prefix}{name}"
                    out[name] = (bank.stacked(full) if full in bank.names else
                                 torch.stack([own_tensors(m)[name].detach() for m in modules]))
                return out
            runs = len(members)
            layers = {name: PackedLayer(layer, tensors(f"{name}.", [m.layers[name] for m in members]), runs)
                      for name, layer in first.layers.items()}
            heads = [m.head for m in members]
            head_tensors = {}
            for module_name, module in first.head.named_modules():
                prefix = f"{module_name}." if module_name else ""
                head_tensors.update({prefix + n: t for n, t in tensors(
                    f"{self.head_name}.{prefix}", [h.get_submodule(module_name) for h in heads]).items()})
            self._packed = (bank, layers, PackedHead(first.head, head_tensors, runs))
        _, layers, head = self._packed
        for name, layer in layers.items():
            set_submodule(self.model, name, layer)
        setattr(self.model, self.head_name, head)
        return self.model


def build_pack(cfgs, directories, num_labels: int, device, init_states=None) -> tuple[Pack, list[Member]]:
    """The one place a pack is assembled (training/run.py, training/parity.py, benchmarks/throughput.py):
    each run's model built exactly as a lone run's (training/model.py build_model), the first one's
    backbone shared, every member's modules on `device`. `init_states[i]`: the trained tensors run i
    starts from, or None."""
    from training.model import build_model
    pack, members = None, []
    for i, cfg in enumerate(cfgs):
        model = build_model(cfg, num_labels, init_states[i] if init_states else None)
        if pack is None:
            pack = Pack(model.to(device), adapters.find_head(model)[0])
        member = pack.add(cfg, directories[i], model)
        member.layers = {name: layer.to(device) for name, layer in member.layers.items()}
        member.head.to(device)
        members.append(member)
    return pack, members


def concat_batches(batches: list[dict], pad_token_id: int) -> dict:
    """One batch of K sub-batches, right-padded to the longest (masked positions change nothing)."""
    if len(batches) == 1:
        return batches[0]
    length = max(b["input_ids"].shape[1] for b in batches)
    pad = lambda t, value: F.pad(t, (0, length - t.shape[1]), value=value)  # noqa: E731
    padding = {"input_ids": pad_token_id, "attention_mask": 0, "token_type_ids": 0}
    return {key: torch.cat([pad(b[key], value) for b in batches])
            for key, value in padding.items() if key in batches[0]}


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
    # a member's own value wins over the shared one
    jobs = [[o for o in keep if override_key(o) not in {override_key(x) for x in m}] + m for m in members]
    return [(compose(job), job) for job in jobs]
