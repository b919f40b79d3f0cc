"""Merge: fold every adapter into its frozen layer, ``W = lambda · W0 + s · dW``, giving plain
``nn.Linear`` modules (zero-latency inference).  Generic over ``base_scale`` / ``delta_weight``.

``merge(model)`` returns a merged *copy* and leaves ``model`` (adapters intact, trainable) as it
was — the round trip is simply keeping both.  ``merge(model, inplace=True)`` is irreversible.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .base import AdapterLayer
from .inject import META_ATTR, adapter_layers, set_submodule


@torch.no_grad()
def merged_linear(layer: AdapterLayer) -> nn.Linear:
    """A plain ``nn.Linear`` computing the same function as ``layer`` (without dropout)."""
    base = layer.base
    lam = layer.base_scale()
    w = base.weight.float() * (1.0 if lam is None else lam.float())
    w = (w + layer.delta_weight().float()).to(base.weight.dtype)
    out = nn.Linear(layer.d_in, layer.d_out, bias=base.bias is not None,
                    device=base.weight.device, dtype=base.weight.dtype)
    out.weight.copy_(w)
    if base.bias is not None:
        out.bias.copy_(base.bias)
    out.requires_grad_(False)
    return out


def merge(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return the model with every AdapterLayer replaced by its merged ``nn.Linear``."""
    target = model if inplace else copy.deepcopy(model)
    for name, layer in list(adapter_layers(target)):
        set_submodule(target, name, merged_linear(layer))
    if META_ATTR in target.__dict__:
        del target.__dict__[META_ATTR]
    return target
