"""Which runs may share a pack: the one rule, read by training (a pack's configs are checked against
it before anything trains) and by the sweep (which runs of a wave it groups into one job).

Runs of a pack share one frozen backbone and one pass over it, so everything that shapes that pass
must be equal: the model, the task and its data, the adapter, the batch size, the schedule. Only
what each member keeps to itself may differ: its seed, learning rate and weight decay (tensors of
the fused step, training/fused.py), the run it starts from, and `rerun`. Methods that train the
backbone itself, or whose layers are not of the low-rank form, cannot be packed (methods.py
`fusable`). Torch-free, so the sweep can plan without the training stack.
"""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

import methods

MEMBER_KEYS = ("seed", "lr", "optim.weight_decay", "init_from", "rerun")


def override_key(override: str) -> str:
    """'+optim.weight_decay=0.1' -> 'optim.weight_decay'."""
    return override.split("=", 1)[0].lstrip("+~")


def is_member_override(override: str) -> bool:
    return override_key(override) in MEMBER_KEYS


def packable(method: str) -> bool:
    """methods.py's `fusable`: the method keeps the backbone frozen and its layers are of the low-rank
    form the packed kernels compute."""
    return methods.get(method).fusable


def _shared(cfg: DictConfig) -> dict:
    """The config without the member keys: what every run of a pack must have equal."""
    plain = OmegaConf.to_container(cfg)
    for key in MEMBER_KEYS:
        *parents, leaf = key.split(".")
        node = plain
        for parent in parents:
            node = node.get(parent) or {}
        node.pop(leaf, None)
    return plain


def check_packable(cfgs: list[DictConfig]) -> None:
    """Refuse a pack whose runs differ in more than MEMBER_KEYS, or whose method trains the backbone."""
    if len(cfgs) == 1:
        return
    first = _shared(cfgs[0])
    for cfg in cfgs[1:]:
        other = _shared(cfg)
        if other != first:
            keys = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
            raise ValueError(f"runs of a pack may differ only in {', '.join(MEMBER_KEYS)}; these differ "
                             f"too: {keys}")
    if methods.get(cfgs[0].adapter.name).peft:
        raise ValueError(f"adapter={cfgs[0].adapter.name} trains through PEFT's own modules, which a pack "
                         "cannot share: its runs train one at a time (train.py without pack.*)")
    if not packable(cfgs[0].adapter.name):
        why = "trains the backbone itself" if methods.get(cfgs[0].adapter.name).trains_backbone else \
            "has layers the packed kernels do not compute (not of the low-rank form)"
        raise ValueError(f"adapter={cfgs[0].adapter.name} {why}: it cannot be packed")
