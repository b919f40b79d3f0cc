"""Baselines that train no adapter: which existing parameters train.

- ``head_only``: only the classification head (DeLoRA report's Table 3 baseline).
- ``bitfit`` (Zaken et al.): every bias term of the model — attention q/k/v and output, FFN, *and the
  LayerNorm biases* (BitFit's "all bias terms"; LayerNorm weights stay frozen) — plus the head.
  Selection is structural: a module's own parameter registered as ``bias``.
- ``full``: everything trains.
"""
from __future__ import annotations

from torch import nn

import methods

BASELINES = methods.names(layer=None, peft=False)  # the methods that add no layer


def set_baseline_trainable(model: nn.Module, method: str) -> None:
    """Apply the freezing of a baseline (the head is handled by the caller)."""
    if method == "head_only":
        model.requires_grad_(False)
    elif method == "bitfit":
        model.requires_grad_(False)
        for module in model.modules():
            bias = module._parameters.get("bias")
            if bias is not None:
                bias.requires_grad_(True)
    elif method == "full":
        model.requires_grad_(True)
    else:
        raise ValueError(f"unknown baseline {method!r}; known: {BASELINES}")
