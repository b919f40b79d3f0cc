"""The table of training methods: one row per `adapter=<name>`, what the harness needs to know about it.

Torch-free (plain Python), so that the config check (training/schema.py), the pack rule
(training/pack_rules.py) and the sweep (sweeping/) read it without loading the training stack. The
layer class is named as a dotted string and imported only when a model is built (:meth:`Method.layer_class`).

Adding a method is one file under adapters/ (its layer class), one row here and one
configs/adapter/<name>.yaml: docs/methods.md walks through an example.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class Method:
    """One training method.

    - ``layer``: ``"module:Class"`` of the :class:`adapters.base.AdapterLayer` subclass wrapping each
      target linear (``None``: the method injects no layer: the baselines).
    - ``layer_args``: fixed keyword arguments of that class for this method (B-only is the one-sided
      LoRA class with ``trained="B"``).
    - ``options``: the options a user may set (``adapter.options.<key>``), with their defaults.
    - ``low_rank``: its layers declare ``s·B A = ΔW`` through ``scaled_factors`` (LoRA's form); a
      method whose update is not of that form sets ``False`` and writes its own ``update`` and
      ``delta_weight``.
    - ``takes_rank``: it needs ``adapter.rank`` ≥ 1 and at least one target.
    - ``trains_backbone``: it trains the shared backbone's own weights (BitFit, full fine-tuning).
    - ``from_lora``: it continues a trained MNLI LoRA run (DeLoRA report, Table 3) instead of injecting
      afresh; its ``init_from`` run is a LoRA run.
    - ``square_only``: its layers need a square weight (SymLoRA).
    - ``peft``: built through PEFT's own classes (adapters/peft_method.py, ``adapter.peft_type``), not
      a layer of ours: trained by the reference engine, one run at a time, never packed.
    """

    name: str
    summary: str
    layer: str | None = None
    layer_args: Mapping = field(default_factory=dict)
    options: Mapping = field(default_factory=dict)
    low_rank: bool = True
    takes_rank: bool = True
    trains_backbone: bool = False
    from_lora: bool = False
    square_only: bool = False
    peft: bool = False

    def __post_init__(self):  # frozen: the mappings too
        object.__setattr__(self, "layer_args", MappingProxyType(dict(self.layer_args)))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def fusable(self) -> bool:
        """Whether runs of this method may share one pass over a frozen backbone (a pack, the fused
        engine): the backbone stays frozen and every layer it adds is of the low-rank form."""
        return not self.trains_backbone and not self.peft and (self.layer is None or self.low_rank)

    def layer_class(self):
        """The layer class, imported now (this imports torch)."""
        if self.layer is None:
            raise ValueError(f"adapter={self.name} injects no adapter layer")
        module, _, name = self.layer.partition(":")
        return getattr(importlib.import_module(module), name)


_ROWS = (
    Method("lora", "Hu et al.: h = W0 x + b + s·B A x; B from 0, A random; both train",
           layer="adapters.lora:LoRALayer"),
    Method("symlora", "Panoutsos et al.: h = λ·W0 x + b + s·Q diag(Λ) Qᵀ x; square weights only",
           layer="adapters.symlora:SymLoRALayer", options={"learn_lambda": True, "q_init": "kaiming"},
           square_only=True),
    # init: a decision, see adapters/delora.py
    Method("delora", "Dantuluri et al. (not PEFT's DeLoRA): h = W0 x + b + s·B Σ A x; A, B frozen random",
           layer="adapters.delora:DeLoRALayer", options={"sigma": "full", "init": "gaussian"}),
    Method("b_only", "Zhu et al.: LoRA with A frozen at a seeded random init; B trains from 0",
           layer="adapters.one_sided:OneSidedLoRALayer", layer_args={"trained": "B"},
           options={"frozen_init": "orthogonal"}),
    Method("a_only", "Zhu et al.'s control: LoRA with B frozen at a seeded random init; A trains from 0",
           layer="adapters.one_sided:OneSidedLoRALayer", layer_args={"trained": "A"},
           options={"frozen_init": "orthogonal"}),
    Method("head_only", "baseline: the backbone frozen, only the classification head trains",
           takes_rank=False),
    Method("bitfit", "Zaken et al.: every bias term (and the head) trains", takes_rank=False,
           trains_backbone=True),
    Method("full", "full fine-tuning: every weight trains", takes_rank=False, trains_backbone=True),
    # DeLoRA report, Table 3: built by adapters/lora_of_lora.py and training/model.py from the MNLI LoRA
    Method("lora_of_lora", "a trained MNLI LoRA's A and B frozen, a DeLoRA Σ (from the identity) trains",
           layer="adapters.delora:DeLoRALayer", from_lora=True),
    Method("lora_head_only", "the trained MNLI LoRA kept frozen, only a new head trains",
           layer="adapters.lora:LoRALayer", from_lora=True),
    # PEFT's methods (configs/adapter/<name>.yaml say where each default comes from)
    Method("peft", "any PEFT method: adapter.peft_type=<PEFT type>, adapter.config={...}", peft=True),
    Method("dora", "Liu et al.: LoRA with the weight's magnitude and direction apart (PEFT use_dora)", peft=True),
    Method("pissa", "Meng et al.: LoRA initialised from W0's principal singular vectors (PEFT)", peft=True),
    Method("vera", "Kopiczko et al.: shared frozen random A, B; trained scaling vectors (PEFT)", peft=True),
    Method("adalora", "Zhang et al.: SVD-form LoRA whose rank budget is reallocated while training (PEFT)",
           peft=True),
    Method("ia3", "Liu et al.: (IA)³, learned rescaling vectors of keys, values and the feed-forward (PEFT)",
           peft=True, takes_rank=False),
    Method("loha", "Hyeon-Woo et al.: low-rank Hadamard product update (PEFT)", peft=True),
    Method("lokr", "Edalati et al.: low-rank Kronecker product update (PEFT)", peft=True),
    Method("oft", "Qiu et al.: orthogonal fine-tuning, block-diagonal orthogonal rotations (PEFT)", peft=True,
           takes_rank=False),  # its size is oft_block_size
)

METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in _ROWS})


def get(name: str) -> Method:
    """The row of ``name``; a ValueError naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


def names(**flags) -> tuple[str, ...]:
    """The methods whose attributes equal ``flags``, in table order: ``names(from_lora=True)``,
    ``names(layer=None)``; ``names()`` is every method."""
    return tuple(m.name for m in METHODS.values() if all(getattr(m, k) == v for k, v in flags.items()))
