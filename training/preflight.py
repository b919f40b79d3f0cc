"""A run's model and data checked before anything is written: the model folder exists (a mistyped
local path is not sent to the Hub), `max_seq_len` fits its position table, its tokenizer covers its
vocabulary, each adapter target names its layers, a local GLUE folder holds the task, and the logger can start. Each failure is one line naming the key (or file)
and what would work."""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from omegaconf import DictConfig

from training.cli import did_you_mean
from training.config import HARNESS_ROOT, resolve_path
from training.schema import ConfigError

# RoBERTa-style position ids start after the padding index: a table of 514 holds 512 tokens
# (transformers' create_position_ids_from_input_ids, models/roberta/modeling_roberta.py).
PADDING_OFFSET_TYPES = ("roberta", "xlm-roberta", "camembert", "roberta-prelayernorm", "data2vec-text",
                        "xmod", "longformer", "mpnet", "ibert")
# A vocabulary rounded up for speed (Qwen2: 151,936 rows for 151,665 tokens) is still covered; a
# tokenizer missing from the folder (5 special tokens for 50,265 rows) is not.
MIN_COVERAGE = 0.9


def looks_like_path(name: str) -> bool:
    """A name meant as a local folder, not a Hub id (`owner/name`): `./x`, `/x`, `~/x`, `assets/x`
    (whose first part exists here), or more than one `/`."""
    if name.startswith((".", "/", "~")) or name.endswith("/") or name.count("/") > 1 or os.sep != "/" and os.sep in name:
        return True
    first = name.split("/", 1)[0]
    return "/" in name and (Path(first).exists() or (HARNESS_ROOT / first).exists())


def check_model_path(name: str) -> Path | str:
    """The local folder of `name`, or `name` as a Hub id; a path that does not exist is an error."""
    local = resolve_path(name)
    if local.exists():
        if not local.is_dir():
            raise ConfigError(f"model.name_or_path={name}: {local} is a file; give the model's folder "
                              "(with config.json) or a Hub id")
        return local
    if looks_like_path(name):
        parent = local.parent
        siblings = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
        close = difflib.get_close_matches(local.name, siblings, n=1)
        hint = f"; did you mean {Path(name).parent / close[0]}?" if close else ""
        raise ConfigError(f"model.name_or_path={name}: no such folder ({local}){hint}")
    return name


def load_model_config(cfg: DictConfig):
    from transformers import AutoConfig

    name = str(cfg.model.name_or_path)
    source = check_model_path(name)
    try:
        return AutoConfig.from_pretrained(str(source))
    except (OSError, ValueError) as error:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        where = ("a local folder or a Hub id in the local cache (HF_HUB_OFFLINE=1)" if offline
                 else "a local folder or a Hub id")
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"model.name_or_path={name}: cannot read its config ({first}); expected {where}") from None


def usable_positions(model_config) -> int | None:
    positions = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    if model_config.model_type in PADDING_OFFSET_TYPES:
        positions -= (model_config.pad_token_id or 0) + 1
    return positions


def check_model(cfg: DictConfig) -> None:
    """Raise ConfigError when the run's model cannot train as configured (nothing written yet)."""
    from transformers import AutoTokenizer

    model_config = load_model_config(cfg)
    name = cfg.model.name_or_path
    positions = usable_positions(model_config)
    if positions is not None and cfg.max_seq_len > positions:
        raise ConfigError(f"max_seq_len={cfg.max_seq_len}: {name} has positions for {positions} tokens "
                          f"(max_position_embeddings={model_config.max_position_embeddings}); "
                          f"give max_seq_len ≤ {positions}")
    source = str(check_model_path(str(name)))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"model.name_or_path={name}: no tokenizer loads from it ({first}); the folder needs "
                          "its tokenizer files (tokenizer.json, or vocab and merges files)") from None
    vocabulary = getattr(model_config, "vocab_size", None)
    if isinstance(vocabulary, int) and vocabulary > 0:
        if len(tokenizer) < MIN_COVERAGE * vocabulary or len(tokenizer) > vocabulary:
            raise ConfigError(f"model.name_or_path={name}: its tokenizer has {len(tokenizer)} tokens for a "
                              f"vocabulary of {vocabulary} (config.json vocab_size); the folder needs the "
                              "model's own tokenizer files (tokenizer.json, or vocab and merges files)")


def check_targets(cfg: DictConfig, model_config) -> None:
    """Each of `adapter.targets` names linear layers of the model (a misspelt one among right ones would
    otherwise leave its layers without an adapter, silently). The model is built on the meta device:
    its structure only, no memory, nothing read."""
    import torch
    from torch import nn
    from transformers import AutoModelForSequenceClassification

    from adapters.baselines import BASELINES
    from adapters.targets import resolve_targets

    if cfg.adapter.name in BASELINES:
        return
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(model_config)
    try:
        targets = resolve_targets(model, list(cfg.adapter.targets))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    for role, target in zip(cfg.adapter.targets, targets):
        if not any(name == target or name.endswith("." + target) for name in linear):
            names = sorted({name.rpartition(".")[2] for name in linear})
            raise ConfigError(f"adapter.targets: {role} names no linear layer of {cfg.model.name_or_path} "
                              f"({model_config.model_type}){did_you_mean(str(target), names)}; its linear layers "
                              f"are {', '.join(names)} (or the roles query, key, value)")


def check_data(cfg: DictConfig) -> None:
    """A local GLUE folder (data=glue_dir) holds the task's training file: FileNotFoundError naming
    the path and the layout expected, before a run folder is made."""
    from glue.loading import glue_file_path

    if cfg.data.source == "glue_dir":
        glue_file_path(cfg.task.name, "train", resolve_path(cfg.data.dir))


def preflight(cfg: DictConfig) -> None:
    from training.loggers import check_logger

    check_model(cfg)
    check_targets(cfg, load_model_config(cfg))
    check_data(cfg)
    check_logger(cfg.logger, cfg.results_dir)
