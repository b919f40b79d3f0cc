"""Building the network of a run: the backbone (Hub, local directory or random from a config), its
classification head, the adapter, and the adapter tensors of an earlier run when it starts from one."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import adapters
import methods
from adapters import peft_method
from adapters.baselines import BASELINES
from adapters.targets import architecture, resolve_targets
from training.config import resolve_path
from training.reference import register_after_step, register_extra_loss


log = logging.getLogger(__name__)

# Methods that continue a trained MNLI LoRA (DeLoRA report, Table 3) rather than inject afresh.
FROM_LORA = methods.names(from_lora=True)


def model_source(cfg: DictConfig) -> str:
    """A local directory when one exists at that path, else the Hub id as given."""
    local = resolve_path(cfg.model.name_or_path)
    return str(local) if local.exists() else cfg.model.name_or_path


def head_extras(cfg: DictConfig) -> tuple[str, ...]:
    """The top-level head modules besides `classifier` of the run's architecture (adapters/targets.py),
    read from its config alone (nothing built)."""
    known = architecture(AutoConfig.from_pretrained(model_source(cfg)).model_type)
    return known.head_extras if known else ()


def build_tokenizer(cfg: DictConfig):
    return AutoTokenizer.from_pretrained(model_source(cfg))


def build_model(cfg: DictConfig, num_labels: int, init_state: dict[str, torch.Tensor] | None = None,
                total_steps: int | None = None):
    """The backbone with a fresh head seeded by the run's seed, and the adapter injected (a PEFT
    method: wrapped by PEFT, adapters/peft_method.py; `total_steps`, the run's optimiser steps, sets
    the schedule of a method that has one: AdaLoRA)."""
    source = model_source(cfg)
    kwargs = {"num_labels": num_labels}
    if num_labels == 1:
        kwargs["problem_type"] = "regression"
    config = AutoConfig.from_pretrained(source)
    if cfg.model.get("dropout") is not None:  # each architecture names its dropout keys differently
        known = architecture(config.model_type)
        keys = known.dropout_keys if known else ("hidden_dropout_prob", "attention_probs_dropout_prob")
        kwargs.update(dict.fromkeys(keys, cfg.model.dropout))
    if config.pad_token_id is None and config.eos_token_id is not None:
        kwargs["pad_token_id"] = config.eos_token_id  # decoders (Llama...) find each sequence's last token by it
    if cfg.model.random_init:
        torch.manual_seed(0)  # one fixed random "pretrained" backbone, the same for every run
        model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(source, **kwargs))
    else:
        # A fine-tuned checkpoint's head may have another number of labels (SST-2's 2 for MNLI's 3):
        # every run's head is new anyway (init_head), so one of the task's size is made, and said.
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            source, ignore_mismatched_sizes=True, output_loading_info=True, **kwargs)
        mismatched = [key for key, *_ in loading.get("mismatched_keys") or []]
        if mismatched:
            log.info("%s has a classification head of another size (%s): a new head of %d label(s) is made "
                     "for task=%s", cfg.model.name_or_path, mismatched[0], num_labels, cfg.task.name)
    init_head(model, seed=cfg.seed)
    if init_state is not None:  # an earlier run's head (classifier and extras) never carries over: seeded above
        heads = adapters.head_prefixes(model)
        init_state = {k: v for k, v in init_state.items() if not k.startswith(heads)}

    method = cfg.adapter.name
    if methods.get(method).peft:
        adapter = OmegaConf.to_container(cfg.adapter, resolve=True)
        model = peft_method.build(model, adapter, seed=cfg.seed, total_steps=total_steps)
        if init_state is not None:
            peft_method.load_state(model, peft_method.without_head(init_state))
        # the method's own schedule (AdaLoRA's rank budget) after each step, its own loss term if any
        register_after_step(model, functools.partial(peft_method.step_hook, model))
        register_extra_loss(model, peft_method.attach_regulariser(model))  # None: no term
        return model
    options = dict(cfg.adapter.get("options") or {})
    targets = tuple(cfg.adapter.targets) if method in BASELINES else resolve_targets(model, cfg.adapter.targets)
    shape = dict(rank=cfg.adapter.rank, alpha=cfg.adapter.alpha, targets=targets,
                 dropout=cfg.adapter.dropout, seed=cfg.seed)
    if method in FROM_LORA:
        if init_state is None:
            raise ValueError(f"adapter={method} continues a trained MNLI LoRA: set init_from=mnli "
                             "(after `python train.py task=mnli adapter=lora ...`) or a LoRA run directory")
        if method == "lora_of_lora":
            adapters.lora_of_lora(model, init_state, **shape)
        else:  # the Table 3 baseline: the MNLI LoRA kept frozen, only the new head trains
            adapters.inject(model, "lora", **shape)
            adapters.load_adapter_state(model, init_state)
            heads = adapters.head_prefixes(model)  # the classifier and its extras (pre_classifier...)
            for name, parameter in model.named_parameters():
                parameter.requires_grad_(name.startswith(heads))
        return model
    adapters.inject(model, method, **shape, **options)
    if init_state is not None:
        adapters.load_adapter_state(model, init_state)
    return model


@torch.no_grad()
def init_head(model, seed: int) -> None:
    """Re-initialise the classification head from the run's seed, as Hugging Face initialises a Linear
    (normal with the config's initializer_range, zero bias), independently of how the backbone was made.
    The head is `classifier` (BERT family) or `score` (decoders, whose Linear has no bias), then the
    architecture's extra head modules (DistilBERT's `pre_classifier`, DeBERTa-v2's `pooler.dense`:
    Linears that Hugging Face initialises the same way), drawn after it so the classifier's draw does
    not depend on them."""
    generator = torch.Generator().manual_seed(seed)
    std = getattr(model.config, "initializer_range", 0.02)
    heads = adapters.head_modules(model)
    if not heads:
        raise ValueError(f"{type(model).__name__} has no classification head named {' or '.join(adapters.HEAD_NAMES)}")
    for _, head in heads:
        for module in head.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()


def load_init_state(run_directory: Path) -> dict[str, torch.Tensor]:
    """The trained tensors of a finished run; `build_model` keeps its adapter tensors and drops its
    head (the classifier's shape differs between tasks; every head module is seeded afresh)."""
    path = Path(run_directory) / "adapter.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"cannot start from {run_directory}: {path.name} is missing "
                                "(is that run finished?)")
    return load_file(path)
