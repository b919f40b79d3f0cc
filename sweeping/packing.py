"""Packs in a sweep: the runs of a wave that differ only in seed, learning rate, weight decay or
starting run train together as one job (training/pack.py), at most `max_pack_size` at a time."""
from __future__ import annotations

from training.pack_rules import is_member_override, packable


def form_packs(runs: list, max_size: int) -> list[list]:
    """`runs` grouped by everything but the member keys (training/pack_rules.py), in chunks of at most `max_size` (order kept)."""
    if not max_size or max_size <= 1:
        return [[run] for run in runs]
    groups: dict[tuple, list] = {}
    for run in runs:
        shared = tuple(o for o in run.overrides if not is_member_override(o))
        groups.setdefault(shared if packable(run.cfg.adapter.name) else (id(run),), []).append(run)
    return [group[i:i + max_size] for group in groups.values() for i in range(0, len(group), max_size)]


def job_overrides(pack: list) -> list[str]:
    """One job's overrides: the shared ones, and `pack.members` holding what each run sets itself."""
    if len(pack) == 1:
        return list(pack[0].overrides)
    shared = [o for o in pack[0].overrides if not is_member_override(o)]
    members = [[o for o in run.overrides if is_member_override(o)] for run in pack]
    literal = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    return shared + ["pack.members=[" + ",".join("[" + ",".join(map(literal, m)) + "]" for m in members) + "]"]
