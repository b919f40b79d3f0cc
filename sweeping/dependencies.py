"""Which runs start from an MNLI run, and the order groups are planned and launched in.

A run whose composed config says ``init_from: mnli`` (MRPC, RTE and STS-B in the LoRA paper's
protocol, and every LoRA-of-LoRA method) starts from the MNLI run of the same method, rank and seed
at the MNLI group's *chosen* setting, under the same other overrides -- the run that
``python train.py <the same overrides> task=mnli`` makes, as training.run.find_init_run defines it.
The LoRA-of-LoRA methods (methods.py ``from_lora``) start from an MNLI *LoRA* run instead.
The sweep passes that run's directory explicitly (``init_from=<dir>``), so the dependent run's
identity records which MNLI run it started from.

When the grid has no such MNLI group (e.g. a LoRA-of-LoRA grid over MRPC/RTE/STS-B), it is added as
an auxiliary group with the dependent group's settings and seeds.
"""
from __future__ import annotations

from dataclasses import replace

import methods

from .grid import Group, merge_overrides
from .identity import Composer

MNLI = "mnli"


def needs_mnli(composer: Composer, group: Group) -> bool:
    """Whether the group's runs start from an MNLI run (its composed ``init_from`` is ``mnli``)."""
    return group.task != MNLI and composer.config(group.base).init_from == MNLI


def mnli_group_for(group: Group) -> Group:
    """The MNLI group whose runs ``group``'s runs start from."""
    method = "lora" if group.method in methods.names(from_lora=True) else group.method
    base = merge_overrides(group.base, [f"task={MNLI}", f"adapter={method}"])
    if group.rank is not None:  # keep the rank override after the adapter choice
        base = merge_overrides(base, [f"adapter.rank={group.rank}"])
    return replace(group, task=MNLI, method=method, base=tuple(base), auxiliary=True)


def resolve(groups: list[Group], composer: Composer) -> tuple[list[Group], dict[tuple, tuple]]:
    """All groups (auxiliary MNLI groups added) in planning order -- every group after the group it
    starts from -- and ``needs``: group key -> the key of the MNLI group it starts from."""
    by_key = {g.key: g for g in groups}
    needs: dict[tuple, tuple] = {}
    for g in groups:
        if needs_mnli(composer, g):
            dep = mnli_group_for(g)
            if dep.key not in by_key:
                by_key[dep.key] = dep
            needs[g.key] = dep.key
    first = [g for g in by_key.values() if g.key not in needs]   # independent (MNLI among them)
    later = [g for g in by_key.values() if g.key in needs]
    return first + later, needs
