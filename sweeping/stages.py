"""The two stages and the choice between them, and the files that record them.

* search: every candidate setting (lr x batch size) of a group on its search seeds;
* choice: once every search run of the group has finished (done or failed), the setting with the
  best mean validation score (best epoch, the task's main metric) over its done search seeds; ties go
  to the setting with more done seeds, then to the earlier one in the grid. A setting with no done
  seed cannot be chosen. A group with a single setting has no search: that setting is the choice.
* replicate: the chosen setting on every seed (the search seeds' runs are re-used, being the same runs).

Records, in ``<results_dir>/sweeps/<grid>/`` (rewritten after every wave, read by report.py):
``search.json`` and ``replicate.json`` (one entry per run: task, method, rank, setting, lr,
batch_size, seed, state, score, run_dir) and ``choices.json`` (docs/run_directory.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rundir import best_mean, write_json_atomic

SEARCH, REPLICATE = "search", "replicate"


@dataclass(frozen=True)
class Choice:
    index: int                 # position of the setting among the group's candidates
    setting: str | None        # the setting name of the chosen runs (docs/run_directory.md)
    lr: float
    batch_size: int
    score_mean: float | None
    n_seeds: int               # done seeds the mean is over
    source: str                # "search" or "only setting"
    rank: int | None = None    # the chosen runs' adapter rank


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def best_setting(scores: Sequence[Sequence[float | None]]) -> tuple[int, float, int] | None:
    """Index, mean score and seed count of the best candidate; ``scores[i]`` holds candidate i's
    scores per search seed (None: not done or no score). None when no candidate has a score.
    The rule is rundir.best_mean's, which the report uses too."""
    return best_mean(dict(enumerate(scores)))


def choice_record(group, choice: Choice) -> dict:
    return {"task": group.task, "method": group.method, "rank": choice_rank(group, choice),
            "setting": choice.setting, "lr": choice.lr, "batch_size": choice.batch_size,
            "score_mean": choice.score_mean, "n_seeds": choice.n_seeds, "source": choice.source,
            "search_seeds": list(group.search_seeds) if choice.source == SEARCH else []}


def choice_rank(group, choice: Choice) -> int | None:
    return choice.rank if choice.rank is not None else group.rank


def run_record(planned) -> dict:
    g = planned.group
    return {"task": g.task, "method": g.method, "rank": planned.rank, "setting": planned.setting,
            "lr": planned.lr, "batch_size": planned.batch_size, "seed": planned.seed,
            "state": planned.state, "score": planned.score, "reason": planned.reason,
            "run_dir": str(planned.directory) if planned.directory else None,
            "init_from": planned.init_from}


def write_records(directory: Path, plan) -> dict[str, Path]:
    """search.json, replicate.json and choices.json for ``plan`` (a sweeping.plan.Plan)."""
    paths = {}
    for stage in (SEARCH, REPLICATE):
        paths[stage] = directory / f"{stage}.json"
        write_json_atomic(paths[stage], [run_record(r) for r in plan.runs if r.stage == stage])
    paths["choices"] = directory / "choices.json"
    write_json_atomic(paths["choices"], [choice_record(g, c) for g, c in plan.choices
                                         if c.setting is not None])
    return paths
