"""Every option of a run, checked before anything is written: a typo or an unsupported value fails
at once, naming the key and what it accepts, instead of deep inside torch after a run folder exists.

Torch-free, so that train.py and sweep.py can check a configuration before importing the training
stack. Hydra already refuses keys that do not exist; this checks the values.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

import methods
from glue.tasks import TASKS

ADAPTERS = methods.names()  # methods.py
LOW_RANK = methods.names(takes_rank=True, peft=False)  # they need a rank and targets
# Methods built through PEFT's own classes (adapters/peft_method.py): `peft` takes any adapter.peft_type.
PEFT_ADAPTERS = methods.names(peft=True)
LOGGERS = ("none", "tensorboard", "wandb", "mlflow")  # training/loggers.py
PRECISIONS = ("bf16", "fp32")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DATA_SOURCES = ("hub", "glue_dir", "sample")
TRAINABLE_TASKS = tuple(name for name in TASKS if name != "ax")  # AX is predicted by the MNLI run


class ConfigError(ValueError):
    """One or more options have values the harness cannot run."""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_int(v) and v >= low), f"an integer ≥ {low}"


def number(low: float = 0.0, high: float | None = None, low_open: bool = True, high_open: bool = False):
    text = f"a number {'>' if low_open else '≥'} {low:g}" + (
        f" and {'<' if high_open else '≤'} {high:g}" if high is not None else "")

    def check(v) -> bool:
        if not _is_number(v):
            return False
        above = v > low if low_open else v >= low
        below = high is None or (v < high if high_open else v <= high)
        return above and below
    return check, text


def one_of(*choices) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: not isinstance(v, bool) and v in choices), "one of " + ", ".join(map(str, choices))


def boolean() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, bool)), "true or false"


def optional(rule):
    check, text = rule
    return (lambda v: v is None or check(v)), f"null or {text}"


def device() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None), \
        "auto, cpu, mps, cuda or cuda:<index>"


def compile_mode():
    return (lambda v: isinstance(v, bool) or v in COMPILE_MODES), \
        "true, false or a torch.compile mode (" + ", ".join(COMPILE_MODES) + ")"


def text():
    return (lambda v: isinstance(v, str) and v != ""), "a non-empty string"


def string_list():
    return (lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v)), "a list of names"


def value_list(rule):
    check, what = rule
    return (lambda v: v is None or (isinstance(v, list) and len(v) > 0 and all(check(x) for x in v))), \
        f"null or a non-empty list, each {what}"


# key -> (check, what it accepts). Keys a preset may lack are looked up with OmegaConf.select.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": integer(0),
    "lr": number(0),
    "batch_size": integer(1),
    "grad_accumulation": integer(1),
    "epochs": integer(1),
    "max_seq_len": integer(8),
    "eval_batch_size": integer(1),
    "engine": one_of("auto", "reference", "fused"),  # training/engine.py ENGINES
    "device": device(),
    "precision": one_of(*PRECISIONS),
    "compile": compile_mode(),
    "pad_to_multiple_of": optional(integer(1)),
    "group_by_length": boolean(),
    "results_dir": text(),
    "rerun": boolean(),
    "logger": one_of(*LOGGERS),
    "log_every": integer(1),
    "num_workers": integer(0),
    "experiment": optional(text()),
    "grid_name": optional(text()),
    "task.name": one_of(*TRAINABLE_TASKS),
    "adapter.name": one_of(*ADAPTERS),
    "adapter.rank": integer(0),
    "adapter.alpha": number(0, low_open=False),
    "adapter.targets": optional(string_list()),  # null only for PEFT methods: PEFT's default for the model
    "adapter.peft_type": text(),
    "adapter.dropout": number(0, 1, low_open=False, high_open=True),
    "model.name_or_path": text(),
    "model.random_init": boolean(),
    "model.dropout": optional(number(0, 1, low_open=False, high_open=True)),
    "data.source": one_of(*DATA_SOURCES),
    "optim.weight_decay": number(0, low_open=False),
    "optim.warmup_ratio": number(0, 1, low_open=False),
    "optim.max_grad_norm": optional(number(0)),
    "optim.eps": number(0),
    "pack.seed": value_list(integer(0)),
    "pack.lr": value_list(number(0)),
    "pack.weight_decay": value_list(number(0, low_open=False)),
}


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError listing every option whose value is not allowed (none written yet)."""
    problems = []
    for key, (check, accepts) in RULES.items():
        value = OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False)
        if value == "<absent>":
            continue
        if isinstance(value, DictConfig) or OmegaConf.is_list(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not check(value):
            problems.append(f"{key}={value!r}: expected {accepts}")
    adapter = cfg.get("adapter") or {}
    if adapter.get("name") in LOW_RANK and _is_int(adapter.get("rank")) and adapter.get("rank") < 1:
        problems.append(f"adapter.rank={adapter.get('rank')!r}: adapter={adapter.get('name')} needs a rank ≥ 1")
    if adapter.get("name") in LOW_RANK and not adapter.get("targets"):
        problems.append(f"adapter.targets=[]: adapter={adapter.get('name')} needs at least one target layer")
    if adapter.get("name") in PEFT_ADAPTERS:
        problems.extend(peft_problems(adapter))
    elif "name" in adapter and adapter.get("targets", []) is None:
        problems.append(f"adapter.targets=None: adapter={adapter.get('name')} needs a list (null is for PEFT methods)")
    betas = OmegaConf.select(cfg, "optim.betas", default=None)
    if betas is not None and not (len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas)):
        problems.append(f"optim.betas={list(betas)!r}: expected two numbers in [0, 1)")
    if OmegaConf.select(cfg, "data.source", default=None) == "glue_dir" and \
            OmegaConf.select(cfg, "data.dir", default=None, throw_on_missing=False) in (None, "???"):
        problems.append("data.dir: data=glue_dir needs the GLUE folder, e.g. data.dir=/path/to/glue_data")
    if OmegaConf.select(cfg, "data.source", default=None) != "glue_dir" and \
            OmegaConf.select(cfg, "data.dir", default=None, throw_on_missing=False) not in (None, "???"):
        problems.append(f"data.dir={OmegaConf.select(cfg, 'data.dir')}: read only from a local GLUE folder; "
                        "add data=glue_dir")
    if adapter.get("name") in LOW_RANK and adapter.get("alpha") == 0:
        problems.append(f"adapter.alpha=0: adapter={adapter.get('name')} scales its update by alpha, so alpha=0 "
                        "trains only the head; give alpha > 0 (adapter=head_only trains only the head)")
    raise_problems(problems)


def raise_problems(problems: list[str]) -> None:
    """One line: `key=value: expected ...`, several joined by `; `."""
    if problems:
        raise ConfigError(("invalid configuration: " if len(problems) > 1 else "") + "; ".join(problems))


def peft_problems(adapter) -> list[str]:
    """The PEFT method's own check of its config (PEFT's message kept), before anything is written.
    Imports PEFT (and torch) only for a PEFT adapter."""
    from adapters.peft_method import PeftConfigError, check

    plain = OmegaConf.to_container(adapter, resolve=True) if isinstance(adapter, DictConfig) else dict(adapter)
    try:
        check(plain)
    except PeftConfigError as error:
        return [str(error)]
    return []


# Top-level options that default to the task file's value (configs/train.yaml: ``lr: ${task.lr}``).
TASK_DEFAULTS = ("lr", "batch_size", "epochs", "init_from")


def check_task_overrides(cfg: DictConfig, overrides) -> None:
    """Refuse ``task.lr=...`` (and the other TASK_DEFAULTS) on a command line where the top-level
    option does not follow it (an experiment preset or the command line set it): the override would
    be silently ignored."""
    problems = []
    for override in overrides:
        key, _, value = str(override).lstrip("+~").partition("=")
        name = key.removeprefix("task.")
        if not key.startswith("task.") or name not in TASK_DEFAULTS:
            continue
        top = OmegaConf.select(cfg, name, default=None)
        if top != OmegaConf.select(cfg, key, default=None):
            problems.append(f"{override}: has no effect, because {name}={top!r} is set (by an experiment "
                            f"preset or on the command line) and is what trains; override {name}={value} instead")
    raise_problems(problems)
