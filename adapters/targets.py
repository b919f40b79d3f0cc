"""Which modules an adapter wraps, per architecture.

Configs name the attention projections by role (`adapter.targets: [query, value]`, the LoRA paper's
choice); each architecture calls them differently (RoBERTa `query`, DistilBERT `q_lin`, DeBERTa-v2
`query_proj`, Llama `q_proj`). Names that are not roles (`dense`, `q_lin`) are module names and pass
through unchanged. The table of architectures is architectures.py (torch-free): it also says which config
keys hold the model's dropout probabilities, and which top-level modules besides `classifier`/`score`
belong to the classification head (fresh weights, not in the pretrained checkpoint: they must train
and be seeded like the classifier, adapters/inject.py `head_modules`).
"""
from __future__ import annotations

from torch import nn

from architectures import ARCHITECTURES, ROLES, Architecture, architecture  # noqa: F401  (the table, torch-free)


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
            f"model_type {model_type!r} is not in the adapter target table (architectures.py knows "
            f"{', '.join(sorted(ARCHITECTURES))}), and adapter.targets={list(targets)} names none of its "
            f"linear layers: set adapter.targets to some of {sorted(linear)}")
    return targets
