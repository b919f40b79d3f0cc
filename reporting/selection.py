"""Two named choices: which epoch scores a run, and which setting represents a (task, method, rank).

* ``selection``: ``best_epoch`` (the papers: a run's score is its best validation epoch) or ``last_epoch``.
* ``setting``:   ``sweep`` (the sweep's ``choices.json`` entry for (task, method, rank) when present and
  when its setting has runs; otherwise falls back to best mean) or ``best_mean`` (the setting with the
  best mean validation score over its finished seeds; ties -> more finished seeds, then the name:
  rundir.best_mean, the rule the sweep uses to choose what to replicate).
"""
from __future__ import annotations

import pandas as pd

from rundir import best_mean

SELECTIONS = ("best_epoch", "last_epoch")
SETTING_MODES = ("sweep", "best_mean")


def score_column(selection: str) -> str:
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    return "best_score" if selection == "best_epoch" else "last_score"


def _choice_for(choices: list[dict], task: str, methods: set[str], rank) -> dict | None:
    found = None
    for c in choices:
        if c.get("task") != task or str(c.get("method")) not in methods:
            continue
        if rank is not None and c.get("rank") is not None and not pd.isna(rank):
            try:
                if int(c["rank"]) != int(rank):
                    continue
            except (TypeError, ValueError):
                continue
        found = c  # later grids win
    return found


def choose_setting(runs: pd.DataFrame, selection: str = "best_epoch", mode: str = "sweep",
                   choices: list[dict] | None = None) -> tuple[str | None, str]:
    """Pick one setting among ``runs`` (all of one task / variant, possibly several ranks).

    Returns (setting, source) with source 'sweep:<grid>', 'best mean validation' or 'only setting'.
    """
    if mode not in SETTING_MODES:
        raise ValueError(f"setting must be one of {SETTING_MODES}, got {mode!r}")
    if runs.empty:
        return None, "no runs"
    settings = list(dict.fromkeys(runs["setting"]))
    if mode == "sweep" and choices:
        task = runs["task"].iloc[0]
        methods = set(runs["method"].dropna().astype(str)) | set(runs["variant"].dropna().astype(str))
        ranks = runs["rank"].dropna().unique()
        rank = ranks[0] if len(ranks) == 1 else None
        c = _choice_for(choices, task, methods, rank)
        if c is not None and c.get("setting") in settings:
            return c["setting"], f"sweep:{c.get('grid', '?')}"
    if len(settings) == 1:
        return settings[0], "only setting"
    col = score_column(selection)
    scores = {setting: [score if status == "done" else None for score, status in
                        zip(runs.loc[runs["setting"] == setting, col], runs.loc[runs["setting"] == setting, "status"])]
              for setting in sorted(settings)}
    winner = best_mean(scores)  # the sweep's rule too: mean, then more scored seeds, then the name
    if winner is None:
        return sorted(settings)[0], "no setting has a score"
    return winner[0], "best mean validation"


def best_seed_run(runs: pd.DataFrame, selection: str = "best_epoch", need_predictions: bool = False):
    """The finished run with the best validation score (optionally: that has test predictions)."""
    col = score_column(selection)
    ok = runs[(runs["status"] == "done") & runs[col].notna()]
    if need_predictions:
        ok = ok[ok["has_predictions"]]
    if ok.empty:
        return None
    return ok.sort_values([col, "seed"], ascending=[False, True]).iloc[0]
