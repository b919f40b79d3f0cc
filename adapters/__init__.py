"""Low-rank adapters for HF encoders (roberta-base default; BERT family too).

Methods (one file each, equation in its docstring; listed in the table of methods.py, see
docs/methods.md): ``lora``, ``symlora``, ``delora`` (Dantuluri et al.'s decomposition-based DeLoRA —
NOT PEFT's DeLoRA of Bini et al.), ``b_only``, ``a_only``, and the baselines ``head_only``,
``bitfit``, ``full``.  Each layer states its equation once, as its scaled factors (adapters/base.py).  The classification head (top-level ``classifier`` or
``score`` module, plus an architecture's other fresh head modules: DistilBERT's ``pre_classifier``,
DeBERTa-v2's ``pooler``; ``head_modules``) always trains.  ``alpha`` defaults to ``rank`` (scaling 1).
"""
from .base import AdapterLayer, module_generator, random_factor
from .delora import DeLoRALayer
from .export import export_merged, export_peft
from .inject import (HEAD_NAMES, HEAD_PREFIX, METHODS, adapter_layers, count_trainable,
                     find_head, head_modules, head_param_ids, head_prefixes, inject)
from .lora import LoRALayer
from .lora_of_lora import lora_of_lora
from .merge import merge, merged_linear
from .norms import layer_norms
from .one_sided import OneSidedLoRALayer
from .state import (adapter_state_dict, load_adapter_state, load_trainable, save_trainable,
                    trainable_state_dict)
from .symlora import SymLoRALayer

__all__ = [
    "HEAD_NAMES", "HEAD_PREFIX", "METHODS", "AdapterLayer", "DeLoRALayer", "LoRALayer", "OneSidedLoRALayer", "SymLoRALayer",
    "adapter_layers", "adapter_state_dict", "count_trainable", "export_merged", "export_peft",
    "find_head", "head_modules", "head_param_ids", "head_prefixes", "inject", "layer_norms", "load_adapter_state", "load_trainable", "lora_of_lora",
    "merge", "merged_linear", "module_generator", "random_factor", "save_trainable",
    "trainable_state_dict",
]
