"""Any PEFT method (DoRA, VeRA, PiSSA, AdaLoRA, (IA)³, LoHa, LoKr, OFT, ...) as a harness adapter,
built through PEFT's own classes (``peft.get_peft_model``): its config, its modules, its trainable
count, its export (``save_pretrained``, ``merge_and_unload``) and its per-step hook (AdaLoRA's
``update_and_allocate``). Nothing of PEFT's is re-implemented here; this file only translates the
harness's adapter keys into a PEFT config and checks them before anything is written.

The harness keys map onto the method's own fields where it has them: ``rank`` → ``r`` (AdaLoRA:
``target_r``, the average rank its budget ends at), ``alpha`` → ``lora_alpha`` / ``alpha``,
``dropout`` → ``lora_dropout`` / ``vera_dropout``, ``targets`` → ``target_modules`` (the roles
query/key/value resolved per architecture, adapters/targets.py; null: PEFT's default for the
architecture). ``adapter.config`` sets any other field of the method's config. The classification
head (classifier and the architecture's extras) is PEFT's ``modules_to_save``: it trains whole.
"""
from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .inject import head_modules
from .targets import resolve_targets

# Methods PEFT implements as LoRA options rather than a peft type of their own.
LORA_VARIANTS = {
    "DORA": {"use_dora": True},            # Liu et al. 2024, arXiv:2402.09353
    "PISSA": {"init_lora_weights": "pissa"},  # Meng et al. 2024, arXiv:2404.02948
}
RANK_FIELDS = ("target_r", "r")  # AdaLoRA's rank is the budget's target; the others' `r`
ALPHA_FIELDS = ("lora_alpha", "alpha")
DROPOUT_FIELDS = ("lora_dropout", "vera_dropout")


class PeftConfigError(ValueError):
    """The PEFT method or one of its config fields is unknown or invalid."""


def _config_class(peft_type: str):
    from peft import PeftType
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    name = str(peft_type).upper()
    base = "LORA" if name in LORA_VARIANTS else name
    if base not in PeftType.__members__ or base not in PEFT_TYPE_TO_CONFIG_MAPPING:
        known = sorted(set(PEFT_TYPE_TO_CONFIG_MAPPING) | set(LORA_VARIANTS))
        raise PeftConfigError(f"adapter.peft_type={peft_type!r}: not a PEFT method; known: {', '.join(known)}")
    return PEFT_TYPE_TO_CONFIG_MAPPING[base], LORA_VARIANTS.get(name, {})


def _first_field(fields: set[str], candidates: tuple[str, ...]) -> str | None:
    return next((f for f in candidates if f in fields), None)


def config_fields(adapter: Mapping[str, Any], *, targets=None, head: tuple[str, ...] = (),
                  seed: int = 0, total_steps: int | None = None) -> tuple[type, dict]:
    """The PEFT config class of `adapter` (the harness's adapter group: peft_type, rank, alpha,
    dropout, config) and the keyword arguments it is built with. Raises PeftConfigError naming the
    key for a field the method does not have."""
    cls, variant = _config_class(adapter.get("peft_type") or "LORA")
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {"task_type": "SEQ_CLS", **variant}
    for key, candidates in (("rank", RANK_FIELDS), ("alpha", ALPHA_FIELDS), ("dropout", DROPOUT_FIELDS)):
        value = adapter.get(key)
        if not value:  # 0/null: the method's own default (e.g. OFT's block size instead of a block count)
            continue
        field = _first_field(fields, candidates)
        if field is None:
            raise PeftConfigError(f"adapter.{key}={value!r}: {cls.__name__} has no {key} "
                                  f"(none of {', '.join(candidates)}); set adapter.{key}=0")
        kwargs[field] = value
    if targets is not None:
        kwargs["target_modules"] = list(targets)
    if head:
        kwargs["modules_to_save"] = list(head)
        if "exclude_modules" in fields:  # no adapter inside the head: it trains whole
            kwargs["exclude_modules"] = rf"({'|'.join(head)})(\..*)?"
    if "projection_prng_key" in fields:  # VeRA's shared frozen projections: drawn from the run's seed
        kwargs["projection_prng_key"] = seed
    extra = dict(adapter.get("config") or {})
    if "total_step" in fields and "total_step" not in extra:  # AdaLoRA's budget schedule spans the run
        if not total_steps:
            raise PeftConfigError(f"adapter={adapter.get('name')}: {cls.__name__}'s schedule needs the run's "
                                  "optimiser steps (total_steps), or adapter.config.total_step")
        kwargs.update(total_step=total_steps, tinit=total_steps // 10, tfinal=3 * total_steps // 10)
    unknown = sorted(set(extra) - fields)
    if unknown:
        raise PeftConfigError(f"adapter.config.{unknown[0]}: {cls.__name__} has no field {unknown[0]!r}"
                              f" (unknown: {unknown}; its fields: {', '.join(sorted(fields))})")
    kwargs.update(extra)
    return cls, kwargs


def parse_config(value) -> dict:
    """``adapter.config`` as given: a mapping, or JSON text (``adapter.config='{"use_rslora": true}'``)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise PeftConfigError(f"adapter.config={value!r}: not JSON ({error})") from None
    if hasattr(value, "items"):
        return dict(value.items())
    raise PeftConfigError(f"adapter.config={value!r}: expected a mapping of the method's config fields")


def make_config(adapter: Mapping[str, Any], **context):
    """The PEFT config object; PEFT's own validation runs here (its message is kept)."""
    adapter = {**adapter, "config": parse_config(adapter.get("config"))}
    cls, kwargs = config_fields(adapter, **context)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        given = {k: v for k, v in kwargs.items() if k in adapter["config"]}
        raise PeftConfigError(f"adapter={adapter.get('name')} ({cls.__name__}"
                              f"{', config ' + json.dumps(given, default=str) if given else ''}): "
                              f"PEFT refuses it: {error}") from None


def check(adapter: Mapping[str, Any]) -> None:
    """Check the PEFT config of `adapter` without a model (before a run folder exists). AdaLoRA's
    schedule length is not known yet: a placeholder stands in for it, unless config sets it."""
    make_config(adapter, head=("classifier",), total_steps=10**6)


def build(model: nn.Module, adapter: Mapping[str, Any], seed: int, total_steps: int | None = None):
    """`model` (a *ForSequenceClassification with its head seeded) wrapped by PEFT. PEFT draws its
    initial factors from torch's global generator: seeded here with the run's seed."""
    from peft import get_peft_model

    targets = adapter.get("targets")
    targets = None if targets is None else resolve_targets(model, list(targets))
    head = tuple(name for name, _ in head_modules(model))
    config = make_config(adapter, targets=targets, head=head, seed=seed, total_steps=total_steps)
    torch.manual_seed(seed)
    try:
        return get_peft_model(model, config)
    except (TypeError, ValueError) as error:
        raise PeftConfigError(f"adapter={adapter.get('name')}: PEFT cannot apply {type(config).__name__} "
                              f"to {type(model).__name__}: {error}") from None


def is_peft(model: nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_nb_trainable_parameters")


def head_parameter_names(model: nn.Module) -> set[str]:
    """Names of the trainable head parameters (PEFT's ``modules_to_save`` copies)."""
    return {n for n, p in model.named_parameters() if p.requires_grad and ".modules_to_save." in n}


def count_trainable(model: nn.Module) -> dict[str, int]:
    """``with_head`` is PEFT's own count (``get_nb_trainable_parameters``); ``head`` the head's
    copy in ``modules_to_save``; ``adapter`` the rest (the papers' convention)."""
    trainable, _ = model.get_nb_trainable_parameters()
    head = sum(p.numel() for n, p in model.named_parameters() if n in head_parameter_names(model))
    return {"adapter": trainable - head, "head": head, "with_head": trainable}


def without_head(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An earlier run's tensors less its head (seeded afresh for the new task)."""
    return {k: v for k, v in state.items() if ".modules_to_save." not in k and ".original_module." not in k}


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy an earlier run's trainable tensors (less its head) into `model`, built the same way;
    every key must match (a run of the same method, rank and targets)."""
    from .state import _load_into

    heads = head_parameter_names(model)
    target = {n: p for n, p in model.named_parameters() if p.requires_grad and n not in heads}
    _load_into(target, dict(state), "init_from (PEFT method)", strict=True)


def record(model: nn.Module) -> dict:
    """What metrics.json keeps of the method: its PEFT type and full config."""
    config = model.peft_config["default"]
    return {"peft_type": str(config.peft_type.value if hasattr(config.peft_type, "value") else config.peft_type),
            "peft_config": json.loads(json.dumps(config.to_dict(), default=_plain))}


def _plain(value):
    return sorted(value) if isinstance(value, (set, frozenset)) else str(value)


def step_hook(model: nn.Module, global_step: int) -> None:
    """The method's own per-step schedule, after the optimiser step and before the gradients are
    cleared (AdaLoRA: ``update_and_allocate`` prunes ranks by the gradients' sensitivity)."""
    tuner = getattr(model, "base_model", None)
    if hasattr(tuner, "update_and_allocate"):
        tuner.update_and_allocate(global_step)


def attach_regulariser(model: nn.Module):
    """A function giving the method's own loss term of the last training forward, or None when the
    method has none. AdaLoRA's orthogonal regulariser is computed by PEFT's AdaLoraModel.forward, which
    adds it only to a loss the wrapped model returns (from labels); the harness computes its loss from
    the logits. So a hook gives the wrapped model's training output a zero loss, PEFT adds
    ``orth_reg_weight`` × its regulariser to it, and the returned function hands that sum over once."""
    tuner = getattr(model, "base_model", None)
    if not hasattr(tuner, "update_and_allocate"):
        return None
    held: list[torch.Tensor] = []

    def keep(module, args, output):
        if module.training:
            held[:] = [output.loss]

    # AdaLoraModel.forward calls `self.model.forward(...)` directly, past any hook: the wrapped model's
    # forward itself is replaced, as a method bound to it (a deep copy binds it to the copy)
    tuner.model.forward = types.MethodType(_forward_with_zero_loss, tuner.model)
    tuner.register_forward_hook(keep)
    return lambda: held.pop() if held else 0.0


def _forward_with_zero_loss(self, *args, **kwargs):
    """The model's own forward; in training, an output without a loss gets a zero one to add to."""
    output = type(self).forward(self, *args, **kwargs)
    if self.training and getattr(output, "loss", None) is None:
        output.loss = output.logits.new_zeros(())
    return output


def export_native(model: nn.Module, directory: str | Path, base_model_name_or_path: str | None = None) -> Path:
    """PEFT's own adapter folder (``save_pretrained``): AutoPeftModelForSequenceClassification loads it."""
    directory = Path(directory)
    if base_model_name_or_path is not None:
        model.peft_config["default"].base_model_name_or_path = base_model_name_or_path
    model.save_pretrained(str(directory))
    return directory


def export_merged(model: nn.Module, directory: str | Path) -> Path:
    """A plain Transformers model with the adapter merged in (PEFT's ``merge_and_unload``), leaving
    `model` as it was (merged on a copy)."""
    import copy

    directory = Path(directory)
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(str(directory))
    return directory
