"""Per-layer norms (SymLoRA paper, Figure 1): ``||lambda · W0||_F`` and ``||s · dW||_F``."""
from __future__ import annotations

import re

import torch
from torch import nn

from .inject import adapter_layers

_LAYER_RE = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)(?:\.|$)")


@torch.no_grad()
def layer_norms(model: nn.Module) -> list[dict]:
    """One dict per adapter layer: ``module``, ``layer`` (int from the path, or None), ``target``
    (last name component), ``lambda`` (1.0 unless SymLoRA), ``base_norm``, ``delta_norm``."""
    rows = []
    for name, layer in adapter_layers(model):
        lam = layer.base_scale()
        lam = 1.0 if lam is None else float(lam.detach())
        m = _LAYER_RE.search(name)
        rows.append({
            "module": name,
            "layer": int(m.group(1)) if m else None,
            "target": name.rpartition(".")[2],
            "lambda": lam,
            "base_norm": float(torch.linalg.norm(layer.base.weight.float()) * abs(lam)),
            "delta_norm": float(torch.linalg.norm(layer.delta_weight().float())),
        })
    return rows
