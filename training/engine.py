"""Which engine trains a run (docs/engines.md).

- ``reference``: Transformers' own ``*ForSequenceClassification`` forward, with the readable adapter
  modules injected (training/reference.py). Every architecture and method; runs of a pack train one
  after another, each exactly as alone.
- ``fused``: the packs (training/pack.py, training/flat.py, training/streams.py, adapters/packed.py):
  a padding-free token stream, keyed dropout, one fused optimiser step for K runs. It re-writes
  RoBERTa's attention, feed-forward block and head, so it is allowed only where it was proven equal
  to the reference (``python -m training.parity``): the exact list in :func:`fused_refusal`.
- ``auto`` (the default): fused where allowed (worthwhile on CUDA and CPU alike, docs/engines.md),
  else reference, with one log line saying why.

The choice is made from the configuration alone (the model's config file, the method name), before
anything is built or written.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from transformers import AutoConfig

import methods

log = logging.getLogger("train")

ENGINES = ("auto", "reference", "fused")


@dataclass(frozen=True)
class Choice:
    engine: str           # reference | fused
    reason: str | None    # why auto chose it (None when asked for by name)
    shared: bool = True   # fused: a pack's runs share one pass (else each trains alone, in turn)

    def record(self) -> dict:
        """The fields metrics.json records (docs/run_directory.md)."""
        return {"engine": self.engine, "engine_reason": self.reason}


def fusable_method(method: str) -> bool:
    """Whether the fused engine computes `method`'s layers: the method table's `fusable` (methods.py:
    low-rank adapter layers or the head alone, the backbone frozen)."""
    return methods.get(method).fusable


def fused_refusal(config, method: str) -> str | None:
    """Why the fused engine may not train `method` on a model of `config` (a transformers config);
    None when everything it was proven for holds. The list is exact on purpose: whatever was not
    proven falls back to the reference engine."""
    from transformers import RobertaForSequenceClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    from training import flat

    model_class = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING.get(type(config), None)
    # The exact class (never a subclass or a look-alike with a `.roberta`): its head is
    # RobertaClassificationHead (dense, tanh, out_proj), which adapters/packed.py PackedHead re-writes.
    if model_class is not RobertaForSequenceClassification:
        name = model_class.__name__ if model_class else f"model_type {config.model_type!r}"
        return f"{name} is not on the fused engine's list (training/engine.py)"
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return f"position_embedding_type={config.position_embedding_type!r} (only absolute is fused)"
    if config.pad_token_id != flat.POSITION_OFFSET - 1:
        return (f"pad_token_id={config.pad_token_id}: training/flat.py numbers positions from "
                f"{flat.POSITION_OFFSET} (RoBERTa's padding_idx 1, plus 1)")
    if getattr(config, "type_vocab_size", 1) != 1:
        return f"type_vocab_size={config.type_vocab_size}: the fused engine passes no token types"
    if getattr(config, "hidden_act", "gelu") != "gelu":
        return f"hidden_act={config.hidden_act!r}: training/flat.py's feed-forward block is GELU"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "a decoder configuration (is_decoder/add_cross_attention)"
    if methods.get(method).peft:
        return f"adapter={method} trains through PEFT's own modules, which the fused engine does not compute"
    if not fusable_method(method):
        return f"adapter={method} trains the backbone's own tensors, which the fused engine shares"
    return None


def choose(cfg: DictConfig, device: torch.device, config=None) -> Choice:
    """The engine of the run `cfg` on `device`; `engine=fused` where it is not allowed is an error
    (raised before anything is written). `config`: the model's transformers config (read from
    cfg.model.name_or_path when not given)."""
    asked = cfg.get("engine", "auto")
    if asked not in ENGINES:  # (training/schema.py refuses it first on the command line)
        raise ValueError(f"engine={asked!r}: choose one of {', '.join(ENGINES)}")
    if asked == "reference":
        return Choice("reference", None)
    if config is None:
        from training.model import model_source
        config = AutoConfig.from_pretrained(model_source(cfg))
    refusal = fused_refusal(config, cfg.adapter.name)
    if asked == "fused":
        if refusal:
            from training.schema import ConfigError
            raise ConfigError(f"engine=fused: {refusal}; engine=reference (or auto) trains it")
        return Choice("fused", None)
    if refusal:
        return Choice("reference", f"engine=auto: reference engine: {refusal}")
    reason = "engine=auto: fused engine: the model and method are on its list (training/engine.py)"
    if device.type == "cpu":
        # Measured with benchmarks/throughput.py (docs/engines.md): on a CPU one fused run is faster
        # than the reference engine, but a pack's shared pass is slower per example than its runs one
        # after another (nothing waits on kernel launches there). The numbers are the same either way.
        return Choice("fused", reason + "; on a CPU a pack's runs train one after another", shared=False)
    return Choice("fused", reason)
