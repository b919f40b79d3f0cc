"""Which modules an adapter wraps, per architecture.

Configs name the attention projections by role (`adapter.targets: [query, value]`, the LoRA paper's
choice); each architecture calls them differently (RoBERTa `query`, DistilBERT `q_lin`, DeBERTa-v2
`query_proj`, Llama `q_proj`). Names that are not roles (`dense`, `q_lin`) are module names and pass
through unchanged. The same table says which config keys hold the model's dropout probabilities, and which top-level
modules besides `classifier`/`score` belong to the classification head (fresh weights, not in the
pretrained checkpoint: they must train and be seeded like the classifier, adapters/inject.py
`head_modules`).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

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


def resolve_targets(model: nn.Module, targets) -> tuple[str, ...]:
    """`targets` with the roles (query, key, value) replaced by `model`'s own module names. For an
    architecture outside the table the names must be the model's own; if none names a linear layer,
    the error lists the ones there are."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    known = architecture(model_type)
    if known is not None:
        return tuple(known.projections[ROLES.index(t)] if t in ROLES else t for t in targets)
    linear = {name.rpartition(".")[2] for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    if not linear & set(targets):
        raise ValueError(
            f"model_type {model_type!r} is not in the adapter target table (adapters/targets.py knows "
            f"{', '.join(sorted(ARCHITECTURES))}), and adapter.targets={list(targets)} names none of its "
            f"linear layers: set adapter.targets to some of {sorted(linear)}")
    return targets
