""""LoRA of LoRA" (DeLoRA report, Table 3): DeLoRA layers (Dantuluri et al. — not PEFT's DeLoRA of
Bini et al.) whose frozen factors are a trained LoRA's A and B, with Σ starting at the identity:

    h = W0 x + b + B' Σ A x,    B' = s_lora · B (scaling folded in, DeLoRA's own s = 1),  Σ0 = I

so step 0 equals the LoRA model.  Only Σ (+ the new model's head) trains.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .base import module_generator
from .delora import DeLoRALayer
from .inject import META_ATTR, adapter_layers, find_head, head_modules, set_submodule
from .lora import LoRALayer


def _factors_from(lora_state, alpha) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module: (s·B, A)} from a LoRA model, a state dict or a safetensors file."""
    if isinstance(lora_state, nn.Module):
        out = {n: tuple(t.detach() for t in l.factors())  # (s·B, A)
               for n, l in adapter_layers(lora_state) if type(l) is LoRALayer}  # plain LoRA, not B-only/A-only
    else:
        if isinstance(lora_state, (str, Path)):
            from safetensors.torch import load_file
            lora_state = load_file(str(lora_state))
        names = {k[: -len(".lora_A")] for k in lora_state if k.endswith(".lora_A")}
        names |= {k[: -len(".lora_B")] for k in lora_state if k.endswith(".lora_B")}
        out = {}
        for n in sorted(names):
            if f"{n}.lora_A" not in lora_state or f"{n}.lora_B" not in lora_state:
                raise KeyError(f"lora_of_lora: {n} lacks lora_A or lora_B in the LoRA state")
            a, b = lora_state[f"{n}.lora_A"], lora_state[f"{n}.lora_B"]
            r = a.shape[0]
            out[n] = (b * ((r if alpha is None else alpha) / r), a)
    if not out:
        raise ValueError("lora_of_lora: no LoRA factors (…lora_A / …lora_B) found")
    return out


def lora_of_lora(model: nn.Module, lora_state, *, alpha: float | None = None,
                 sigma: str = "full", dropout: float = 0.0, rank: int | None = None,
                 targets=None, seed: int | None = None) -> list[str]:
    """Inject DeLoRA layers built from a trained LoRA into ``model`` (fresh base + new head).

    ``lora_state``: a LoRA-injected model (its scaling is used), or its :func:`adapter_state_dict`
    / a :func:`save_trainable` file (head keys ignored), then ``alpha`` is the LoRA's alpha
    (default: its rank, s = 1).  ``rank`` / ``targets``, if given, must match the LoRA's (checked);
    ``seed`` is accepted for a uniform call with :func:`inject` and unused (nothing is random).
    Returns the wrapped module names."""
    if getattr(model, META_ATTR, None) is not None or next(adapter_layers(model), None):
        raise RuntimeError("model already has adapters injected; build a fresh model")
    factors = _factors_from(lora_state, alpha)
    if targets is not None:
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
        off = [n for n in factors if not any(n == t or n.endswith("." + t) for t in targets)]
        if off:
            raise ValueError(f"lora_of_lora: LoRA modules {off} do not match targets {targets}")
    if rank is not None and {a.shape[0] for _, a in factors.values()} != {rank}:
        raise ValueError(f"lora_of_lora: rank={rank} but the LoRA has ranks "
                         f"{sorted({a.shape[0] for _, a in factors.values()})}")
    layers = {}
    for name, (b, a) in factors.items():
        base = model.get_submodule(name)
        if not isinstance(base, nn.Linear) or tuple(base.weight.shape) != (b.shape[0], a.shape[1]):
            raise ValueError(f"lora_of_lora: {name} is not an nn.Linear of shape "
                             f"{(b.shape[0], a.shape[1])}")
        layer = DeLoRALayer(base, a.shape[0], None, dropout, name=name, sigma=sigma,
                            generator=module_generator(0, name))
        with torch.no_grad():
            layer.delora_A.copy_(a)
            layer.delora_B.copy_(b)
            s = layer.delora_Sigma
            s.copy_(torch.eye(s.shape[0]) if s.dim() == 2 else torch.ones(s.shape[0]))
        layers[name] = layer
    model.requires_grad_(False)
    for name, layer in layers.items():
        set_submodule(model, name, layer)
    head_name, _ = find_head(model)
    for _, module in head_modules(model):  # the head and its extras (DistilBERT's pre_classifier...)
        module.requires_grad_(True)
    ranks = {l.rank for l in layers.values()}
    object.__setattr__(model, META_ATTR, dict(
        method="delora", lora_of_lora=True, rank=max(ranks), alpha=float(max(ranks)),
        targets=sorted({n.rpartition(".")[2] for n in layers}), dropout=dropout, seed=None,
        options={"sigma": sigma}, modules=list(layers), head=head_name))
    return list(layers)
