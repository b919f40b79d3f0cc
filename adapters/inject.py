"""Inject adapters into an HF encoder by target-module name suffix; freezing; parameter counts."""
from __future__ import annotations

from functools import partial
from typing import Callable, Iterator

from torch import nn

import methods

from .base import AdapterLayer, module_generator
from .baselines import set_baseline_trainable
from .targets import architecture



def injectable() -> tuple[str, ...]:
    """What `inject` builds: the methods of methods.py not built from a trained LoRA run (those that
    add a layer of their own, and the baselines)."""
    return methods.names(from_lora=False, peft=False)


METHODS = injectable()  # (the name the package exports)


def layer_factory(method: str) -> Callable[..., AdapterLayer]:
    """The layer class of ``method`` (methods.py), with its fixed arguments bound."""
    row = methods.get(method)
    return partial(row.layer_class(), **row.layer_args)


# method -> (layer factory, options with their defaults), for the methods that add layers
ADAPTER_METHODS = {name: (layer_factory(name), dict(methods.get(name).options))
                   for name in injectable() if methods.get(name).layer is not None}
HEAD_NAMES = ("classifier", "score")  # top-level head module of HF *ForSequenceClassification
HEAD_PREFIX = "classifier."  # the classifier's parameter-name prefix (BERT/RoBERTa family); the whole
# head, extras included, is `head_prefixes(model)`
META_ATTR = "_adapters_meta"


def find_head(model: nn.Module) -> tuple[str | None, nn.Module | None]:
    """The classification head: the top-level child named ``classifier`` (RoBERTa's
    ``RobertaClassificationHead`` = dense + out_proj; BERT's single ``Linear``) or ``score``.
    BERT's ``pooler`` is part of the pretrained encoder and is *not* the head.  ``(None, None)`` if
    the model has none (e.g. a bare encoder)."""
    for name in HEAD_NAMES:
        module = model._modules.get(name)
        if module is not None:
            return name, module
    return None, None


def head_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every top-level module of the classification head, ``(name, module)``: :func:`find_head`'s
    first, then the architecture's ``head_extras`` (adapters/targets.py: DistilBERT's
    ``pre_classifier``, DeBERTa-v2's ``pooler``), which are as fresh as the classifier and so must train,
    be seeded, saved, loaded and exported with it.  Empty if the model has no head."""
    name, head = find_head(model)
    if head is None:
        return []
    known = architecture(getattr(getattr(model, "config", None), "model_type", None))
    extras = [(n, model._modules[n]) for n in (known.head_extras if known else ())
              if model._modules.get(n) is not None]
    return [(name, head), *extras]


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of the head's modules (``"classifier."``, ``"pre_classifier."``...)."""
    return tuple(f"{name}." for name, _ in head_modules(model))


def head_param_ids(model: nn.Module) -> set[int]:
    """``id`` of every parameter of the head's modules."""
    return {id(p) for _, module in head_modules(model) for p in module.parameters()}


def adapter_layers(model: nn.Module) -> Iterator[tuple[str, AdapterLayer]]:
    """Iterate ``(module name, AdapterLayer)`` over the model."""
    for name, module in model.named_modules():
        if isinstance(module, AdapterLayer):
            yield name, module


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _matches(name: str, targets: tuple[str, ...]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def inject(model: nn.Module, method: str, *, rank: int = 8, alpha: float | None = None,
           targets=("query", "value"), dropout: float = 0.0, seed: int = 0,
           **options) -> list[str]:
    """Freeze ``model`` and add ``method`` in place; return the wrapped module names.

    Adapters wrap every ``nn.Linear`` whose name equals or ends with ``"." + target`` (outside the
    head).  ``alpha`` defaults to ``rank`` (scaling ``s = alpha / rank = 1``).  The random factors
    come from a generator seeded by ``(seed, module name)``.  Only adapter parameters and the head
    train (baselines: see :mod:`adapters.baselines`).  Method options: symlora ``learn_lambda``,
    ``q_init``; delora ``sigma``, ``init``; b_only / a_only ``frozen_init``.
    """
    row = methods.get(method)  # an unknown name: the error lists every method
    if row.peft:
        raise ValueError(f"{method} is built through PEFT's own classes (adapters/peft_method.py); "
                         f"inject builds {', '.join(injectable())}")
    if row.from_lora:
        raise ValueError(f"{method} starts from a trained LoRA (training/model.py build_model builds it); "
                         f"inject builds {', '.join(injectable())}")
    if getattr(model, META_ATTR, None) is not None or next(adapter_layers(model), None):
        raise RuntimeError("model already has adapters injected; build a fresh model")
    head_name, head = find_head(model)
    heads = head_modules(model)
    if isinstance(targets, str):
        targets = (targets,)
    targets = tuple(targets)
    layers: dict[str, AdapterLayer] = {}
    if row.layer is None:  # a baseline
        if options:
            raise ValueError(f"{method}: unknown option(s) {sorted(options)}; it takes none")
        if method == "head_only" and head is None:
            raise ValueError(f"head_only: model has no head module (looked for {HEAD_NAMES})")
    else:
        factory, allowed = layer_factory(method), row.options
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"{method}: unknown option(s) {unknown}; known: {sorted(allowed)}")
        prefixes = head_prefixes(model)  # no adapter in the head (a head module or inside one): it trains whole
        found = [(n, m) for n, m in model.named_modules()
                 if isinstance(m, nn.Linear) and _matches(n, targets) and not f"{n}.".startswith(prefixes)]
        if not found:
            raise ValueError(f"{method}: no nn.Linear module matches targets {targets}")
        if row.square_only:
            oblong = [f"{n} (d_out={m.weight.shape[0]}, d_in={m.weight.shape[1]})"
                      for n, m in found if m.weight.shape[0] != m.weight.shape[1]]
            if oblong:
                raise ValueError(f"{method} needs square weights; targets {list(targets)} match non-square "
                                 f"ones: {', '.join(oblong[:3])}{' ...' if len(oblong) > 3 else ''}")
        for name, module in found:  # build all first: an error leaves the model untouched
            layers[name] = factory(module, rank, alpha, dropout, name=name,
                                   generator=module_generator(seed, name), **options)
    if row.layer is None:
        set_baseline_trainable(model, method)
    else:
        model.requires_grad_(False)
        for name, layer in layers.items():
            set_submodule(model, name, layer)  # the layer's own parameters are trainable
    for _, module in heads:  # the head and its extras: fresh weights, they train with every method
        module.requires_grad_(True)
    meta = dict(method=method, rank=rank, alpha=float(rank if alpha is None else alpha),
                targets=list(targets), dropout=dropout, seed=seed,
                options={**row.options, **options},
                modules=list(layers), head=head_name)
    object.__setattr__(model, META_ATTR, meta)
    return list(layers)


def count_trainable(model: nn.Module) -> dict[str, int]:
    """Trainable parameters: ``adapter`` (everything trainable outside the head — the papers'
    convention), ``head`` (all of :func:`head_modules`) and ``with_head`` (their sum)."""
    if hasattr(model, "peft_config"):  # a PEFT method: PEFT's own count (adapters/peft_method.py)
        from .peft_method import count_trainable as count_peft
        return count_peft(model)
    head_ids = head_param_ids(model)
    adapter = head = 0
    for p in model.parameters():
        if p.requires_grad:
            if id(p) in head_ids:
                head += p.numel()
            else:
                adapter += p.numel()
    return {"adapter": adapter, "head": head, "with_head": adapter + head}
