"""Packs in a sweep: the runs of a wave that differ only in seed, learning rate, weight decay or
starting run train together as one job (training/pack.py), at most `max_pack_size` at a time."""
from __future__ import annotations

from training.run import UNPACKABLE

# The override keys that may differ inside a pack (training.run.PACK_FREE, plus weight decay).
MEMBER_KEYS = ("seed", "lr", "init_from", "rerun", "optim.weight_decay")


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def form_packs(runs: list, max_size: int) -> list[list]:
    """`runs` grouped by everything but MEMBER_KEYS, in chunks of at most `max_size` (order kept)."""
    if not max_size or max_size <= 1:
        return [[run] for run in runs]
    groups: dict[tuple, list] = {}
    for run in runs:
        shared = tuple(o for o in run.overrides if key_of(o) not in MEMBER_KEYS)
        groups.setdefault((id(run),) if run.cfg.adapter.name in UNPACKABLE else shared, []).append(run)
    return [group[i:i + max_size] for group in groups.values() for i in range(0, len(group), max_size)]


def job_overrides(pack: list) -> list[str]:
    """One job's overrides: the shared ones, and `pack.members` holding what each run sets itself."""
    if len(pack) == 1:
        return list(pack[0].overrides)
    shared = [o for o in pack[0].overrides if key_of(o) not in MEMBER_KEYS]
    members = [[o for o in run.overrides if key_of(o) in MEMBER_KEYS] for run in pack]
    literal = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    return shared + ["pack.members=[" + ",".join("[" + ",".join(map(literal, m)) + "]" for m in members) + "]"]
