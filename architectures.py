"""What the harness knows about each architecture, by its config's `model_type`: the module names of
its attention projections, the config keys of its dropout probabilities, and the top-level modules
besides `classifier`/`score` that belong to its classification head.

Torch-free (plain Python and json), so that the sweep reads these facts without the training stack;
adapters/targets.py maps `adapter.targets` roles through it and adapters/inject.py finds the head's
extra modules with it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROLES = ("query", "key", "value")


@dataclass(frozen=True)
class Architecture:
    projections: tuple[str, str, str]  # the module names of the query, key and value projections
    dropout_keys: tuple[str, ...]      # config keys set by model.dropout
    # Top-level modules of the *ForSequenceClassification model, before `classifier`, that are part of
    # its head (randomly initialised there, not pretrained). BERT's `pooler` lives inside `model.bert`
    # and is pretrained: not one of them.
    head_extras: tuple[str, ...] = ()


BERT_LIKE = Architecture(("query", "key", "value"), ("hidden_dropout_prob", "attention_probs_dropout_prob"))
DECODER = Architecture(("q_proj", "k_proj", "v_proj"), ("attention_dropout",))
ARCHITECTURES = {
    **dict.fromkeys(("roberta", "xlm-roberta", "camembert", "bert", "electra", "albert", "megatron-bert",
                     "roberta-prelayernorm", "data2vec-text", "ernie", "xmod"), BERT_LIKE),
    # DistilBertForSequenceClassification: pre_classifier (Linear d→d), ReLU, dropout, classifier
    "distilbert": Architecture(("q_lin", "k_lin", "v_lin"), ("dropout", "attention_dropout", "seq_classif_dropout"),
                               head_extras=("pre_classifier",)),
    # DebertaV2ForSequenceClassification: pooler (ContextPooler: dropout, dense, activation), classifier
    "deberta-v2": Architecture(("query_proj", "key_proj", "value_proj"),
                               ("hidden_dropout_prob", "attention_probs_dropout_prob"), head_extras=("pooler",)),
    "mpnet": Architecture(("q", "k", "v"), ("hidden_dropout_prob", "attention_probs_dropout_prob")),
    **dict.fromkeys(("llama", "mistral", "qwen2", "gemma"), DECODER),  # heads named `score`
}


def architecture(model_type: str) -> Architecture | None:
    return ARCHITECTURES.get(model_type)


def model_type(folder: str | Path) -> str | None:
    """The `model_type` in a local model folder's config.json, read with json (Transformers not
    loaded); None for a Hub id or a folder without one."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("model_type")
