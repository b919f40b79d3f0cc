"""Which runs may share a pack: the one rule, read by training (a pack's configs are checked against
it before anything trains) and by the sweep (which runs of a wave it groups into one job).

Runs of a pack share one frozen backbone and one pass over it, so everything that shapes that pass
must be equal: the model, the task and its data, the adapter, the batch size, the schedule. Only
what each member keeps to itself may differ: its seed, learning rate and weight decay (tensors of
the fused step, training/fused.py), the run it starts from, and `rerun`. Methods that train the
backbone itself cannot be packed. Torch-free, so the sweep can plan without the training stack.
"""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from training.schema import PEFT_ADAPTERS

MEMBER_KEYS = ("seed", "lr", "optim.weight_decay", "init_from", "rerun")
UNPACKABLE = ("bitfit", "full")  # they train the shared backbone itself


def override_key(override: str) -> str:
    """'+optim.weight_decay=0.1' -> 'optim.weight_decay'."""
    return override.split("=", 1)[0].lstrip("+~")


def is_member_override(override: str) -> bool:
    return override_key(override) in MEMBER_KEYS


def packable(method: str) -> bool:
    return method not in UNPACKABLE and method not in PEFT_ADAPTERS


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
    if cfgs[0].adapter.name in PEFT_ADAPTERS:
        raise ValueError(f"adapter={cfgs[0].adapter.name} trains through PEFT's own modules, which a pack "
                         "cannot share: its runs train one at a time (train.py without pack.*)")
    if not packable(cfgs[0].adapter.name):
        raise ValueError(f"adapter={cfgs[0].adapter.name} trains the backbone itself: it cannot be packed")
