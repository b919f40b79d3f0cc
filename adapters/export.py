"""Export a trained model for use without this package.

- :func:`export_peft` writes a PEFT LoRA adapter directory (``adapter_config.json`` +
  ``adapter_model.safetensors``) that ``peft.PeftModel.from_pretrained(base_model, dir)`` loads and
  that gives our logits.  Every layer must be a rank-r LoRA update of an unscaled ``W0``
  (``AdapterLayer.lora_factors``): LoRA, B-only, A-only, DeLoRA (``lora_B = s·B``, ``lora_A = Σ A``),
  SymLoRA while lambda is 1 (``lora_B = s·Q diag(Λ)``, ``lora_A = Qᵀ``).  The scaling is folded into
  ``lora_B`` and ``lora_alpha = r``.  The head (with its extras, e.g. DistilBERT's ``pre_classifier``) is saved as
  PEFT's ``modules_to_save``.
  Writing needs only json + safetensors: peft is *not* imported. A model of a PEFT method
  (adapters/peft_method.py) is written by PEFT itself (``save_pretrained``), any method it has.
- :func:`export_merged` saves the merged model with ``save_pretrained`` (any method, including
  SymLoRA with lambda != 1, bitfit and full fine-tuning).
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from .inject import adapter_layers, find_head, head_modules, head_param_ids
from .merge import merge
from .peft_method import export_merged as export_peft_merged, export_native, is_peft


def export_peft(model: nn.Module, directory: str | Path,
                base_model_name_or_path: str | None = None) -> Path:
    """Write ``model``'s adapters + head as a PEFT LoRA adapter directory; return its path."""
    from safetensors.torch import save_file

    if is_peft(model):  # a PEFT method: PEFT's own folder (save_pretrained)
        return export_native(model, directory, base_model_name_or_path)
    layers = list(adapter_layers(model))
    if not layers:
        raise ValueError("export_peft: model has no adapter layers; use export_merged")
    head_name, _ = find_head(model)
    heads = head_modules(model)  # classifier/score and the architecture's extras (pre_classifier...)
    head_ids = head_param_ids(model)
    owned = {id(p) for _, layer in layers for p in layer.parameters()}
    extra = [n for n, p in model.named_parameters()
             if p.requires_grad and id(p) not in head_ids and id(p) not in owned]
    if extra:
        raise ValueError(f"export_peft: trainable parameters outside adapters and head (e.g. "
                         f"{extra[:3]}) cannot be a LoRA adapter; use export_merged")
    tensors, ranks, dropouts = {}, {}, set()
    for name, layer in layers:
        factors = layer.lora_factors()
        if factors is None:
            lam = layer.base_scale()
            raise ValueError(f"export_peft: {name} ({layer.method}, lambda="
                             f"{None if lam is None else float(lam.detach())}) is not a plain LoRA update; "
                             "use export_merged")
        b, a = factors
        prefix = f"base_model.model.{name}"
        tensors[f"{prefix}.lora_A.weight"] = a.detach().cpu().contiguous().clone()
        tensors[f"{prefix}.lora_B.weight"] = b.detach().cpu().contiguous().clone()
        ranks[name] = layer.rank
        dropouts.add(getattr(layer.dropout, "p", 0.0))
    for name, module in heads:
        for n, p in module.named_parameters():
            tensors[f"base_model.model.{name}.{n}"] = p.detach().cpu().contiguous().clone()
    r = max(set(ranks.values()), key=list(ranks.values()).count)
    pattern = {k: v for k, v in ranks.items() if v != r}
    config = {
        "peft_type": "LORA",
        "task_type": "SEQ_CLS" if head_name is not None else None,
        "base_model_name_or_path": base_model_name_or_path,
        "r": r,
        "lora_alpha": r,  # scaling folded into lora_B: alpha / r = 1
        "rank_pattern": pattern,
        "alpha_pattern": dict(pattern),
        "target_modules": sorted(ranks),
        "lora_dropout": max(dropouts) if dropouts else 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "use_rslora": False,
        "use_dora": False,
        # every head module: the extras are random in the base checkpoint, PEFT must load ours
        "modules_to_save": [name for name, _ in heads] or None,
        "inference_mode": True,
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    return directory


def export_merged(model: nn.Module, directory: str | Path) -> Path:
    """Save the merged copy of ``model`` (plain HF model, ``save_pretrained``, safetensors)."""
    if is_peft(model):  # a PEFT method: PEFT's merge_and_unload
        return export_peft_merged(model, directory)
    merged = merge(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(merged, "save_pretrained"):
        merged.save_pretrained(str(directory))
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in merged.state_dict().items()},
                  str(directory / "model.safetensors"))
    return directory
