"""Packs in a sweep: the runs of a wave that differ only in seed, learning rate, weight decay or
starting run train together as one job (training/pack.py), at most `max_pack_size` at a time.

Runs that training would not pack (a method that trains the backbone; a model whose head has modules
besides the classifier, which training/run.py trains one after another) get a job each, so that a
parallel launcher runs them side by side. The model's facts come from its folder's config.json
(architectures.py), without loading torch."""
from __future__ import annotations

from architectures import architecture, model_type
from training.config import resolve_path
from training.pack_rules import is_member_override, packable


def head_extras(cfg) -> tuple[str, ...]:
    """The top-level head modules besides `classifier` of the run's model (DistilBERT's
    `pre_classifier`...), from a local model folder's config.json; () for a Hub id."""
    known = architecture(model_type(resolve_path(cfg.model.name_or_path)))
    return known.head_extras if known else ()


def shares_packs(cfg) -> bool:
    """Whether the run may train in a pack with others (training packs it rather than train it alone)."""
    return packable(cfg.adapter.name) and not head_extras(cfg)


def form_packs(runs: list, max_size: int) -> list[list]:
    """`runs` grouped by everything but the member keys (training/pack_rules.py), in chunks of at most `max_size` (order kept)."""
    if not max_size or max_size <= 1:
        return [[run] for run in runs]
    groups: dict[tuple, list] = {}
    for run in runs:
        shared = tuple(o for o in run.overrides if not is_member_override(o))
        groups.setdefault(shared if shares_packs(run.cfg) else (id(run),), []).append(run)
    return [group[i:i + max_size] for group in groups.values() for i in range(0, len(group), max_size)]


def job_overrides(pack: list) -> list[str]:
    """One job's overrides: the shared ones, and `pack.members` holding what each run sets itself."""
    if len(pack) == 1:
        return list(pack[0].overrides)
    shared = [o for o in pack[0].overrides if not is_member_override(o)]
    members = [[o for o in run.overrides if is_member_override(o)] for run in pack]
    literal = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    return shared + ["pack.members=[" + ",".join("[" + ",".join(map(literal, m)) + "]" for m in members) + "]"]
