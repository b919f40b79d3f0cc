"""Adapter / trainable state: in-memory dicts and safetensors files (strict key checking).

- ``adapter_state_dict``: every tensor an adapter layer owns (trainable factors *and* frozen random
  factors, so a file is usable without the seed; SymLoRA's lambda) plus any other trainable
  parameter outside the head (bitfit's biases, full fine-tuning's weights).  No head (none of
  ``head_modules``: DistilBERT's ``pre_classifier`` is head, not adapter).  This is what
  an RTE / MRPC / STS-B run copies from the MNLI run.  Tensors are detached views (like
  ``state_dict``), not copies.
- ``trainable_state_dict`` = adapter state + the parameters of every head module (classifier and
  extras): what ``save_trainable`` writes.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .inject import META_ATTR, adapter_layers, head_modules, head_param_ids


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter tensors only (no head), keyed by their name in ``model.state_dict()``."""
    state: dict[str, torch.Tensor] = {}
    for name, layer in adapter_layers(model):
        for tensors in (layer.named_parameters(), layer.named_buffers()):
            for n, t in tensors:
                if not n.startswith("base."):
                    state[f"{name}.{n}"] = t.detach()
    head_ids = head_param_ids(model)  # the head's extras too: they are head, not adapter
    for n, p in model.named_parameters():
        if p.requires_grad and id(p) not in head_ids and n not in state:
            state[n] = p.detach()
    return state


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter state plus the head's parameters."""
    state = adapter_state_dict(model)
    for head_name, head in head_modules(model):
        for n, p in head.named_parameters():
            state[f"{head_name}.{n}"] = p.detach()
    return state


def _load_into(target: dict[str, torch.Tensor], state: dict[str, torch.Tensor], what: str,
               strict: bool) -> None:
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if strict and (missing or unexpected):
        raise KeyError(f"{what}: missing keys {missing}; unexpected keys {unexpected}")
    for k in sorted(set(target) & set(state)):
        if tuple(target[k].shape) != tuple(state[k].shape):
            raise ValueError(f"{what}: shape mismatch for {k!r}: model {tuple(target[k].shape)} "
                             f"vs state {tuple(state[k].shape)}")
    with torch.no_grad():
        for k in sorted(set(target) & set(state)):
            target[k].copy_(state[k])


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor], strict: bool = True) -> None:
    """Copy ``state`` (from :func:`adapter_state_dict` of a model injected the same way) in place."""
    _load_into(adapter_state_dict(model), state, "load_adapter_state", strict)


def save_trainable(model: nn.Module, path: str | Path) -> Path:
    """Write adapter + head tensors as safetensors (injection settings in the metadata): to a temporary
    file beside ``path``, flushed to disk, then renamed, so a kill leaves the old file or the new one."""
    from safetensors.torch import save

    from rundir.files import write_atomic

    path = Path(path)
    tensors = {k: v.cpu().contiguous().clone() for k, v in trainable_state_dict(model).items()}
    meta = getattr(model, META_ATTR, None)
    # Whole or not at all, with the umask's mode (safetensors' save_file writes in place, 0600).
    write_atomic(path, save(tensors, metadata={"format": "pt", "adapters": json.dumps(meta)}))
    return path


def load_trainable(model: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load a :func:`save_trainable` file into a model injected the same way.  Strict: missing or
    unexpected keys raise a ``KeyError`` naming them; shape mismatches a ``ValueError``."""
    from safetensors.torch import load_file

    _load_into(trainable_state_dict(model), load_file(str(path)), f"load_trainable({path})", strict)
