"""The published numbers (results/reference/published_results.csv) and the GLUE server test scores."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .tasks import NON_BERNOULLI, main_metric, normalise_task


def run_task(task: str) -> str:
    """MNLI-mm is scored on the MNLI runs (and with MNLI's metric family)."""
    return "mnli" if task in ("mnli_mm", "mnli_all") else task

DEFAULT_PUBLISHED = Path(__file__).resolve().parent.parent / "results" / "reference" / "published_results.csv"


class ReportInputError(ValueError):
    """Bad input to the report, with the file (and line) that holds it."""


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    if path and not Path(path).is_file():
        raise ReportInputError(f"published={path}: no such file")
    path = Path(path) if path else DEFAULT_PUBLISHED
    if not path.exists():
        return pd.DataFrame(columns=["source", "table", "method", "model", "trainable_params", "rank",
                                     "task", "split", "metric", "value", "plus_minus", "note", "test_n"])
    df = pd.read_csv(path, dtype={"table": str, "trainable_params": str})
    df["task"] = df["task"].map(normalise_task)
    df["rank"] = pd.to_numeric(df["rank"], errors="coerce").astype("Int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["plus_minus"] = pd.to_numeric(df["plus_minus"], errors="coerce")
    # the number of test examples a published test score counts (its Bernoulli ± follows it)
    df["test_n"] = pd.to_numeric(df["test_n"], errors="coerce").astype("Int64") if "test_n" in df else pd.NA
    return df


def find_published(pub: pd.DataFrame, source: str, table: str, method: str, task: str,
                   split: str = "validation", rank=None) -> pd.Series | None:
    """One published row (values are percentages, as printed in the papers)."""
    if pub.empty:
        return None
    m = (pub["source"] == source) & (pub["table"].astype(str) == str(table)) & (pub["method"] == method) \
        & (pub["task"] == task) & (pub["split"] == split)
    sub = pub[m]
    if rank is not None and not sub.empty and sub["rank"].notna().any():
        sub = sub[sub["rank"] == int(rank)]
    return None if sub.empty else sub.iloc[0]


def load_test_scores(path: str | Path | None) -> pd.DataFrame:
    """GLUE server scores CSV with columns task, method, score (fraction or percentage) -> fractions.

    Task names may be the server's ('SST-2', 'MNLI-m', 'MNLI-mm') or the Hub's ('sst2'); an optional
    ``rank`` column restricts a score to that rank. A score above 1 is a percentage ('60' = 0.60). A
    ragged row, a non-numeric score, a score outside the metric's range or a missing column is an
    error naming the file and line. ``pooled``: the task was given as plain ``mnli`` (one MNLI test
    number over matched and mismatched together, as the SymLoRA paper prints it), not ``MNLI-m``.
    """
    import csv

    cols = ["task", "method", "score", "rank", "pooled"]
    if not path:
        return pd.DataFrame(columns=cols)
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"test_scores={path}: no such file")
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    if not lines:
        raise ReportInputError(f"{path}: empty; expected a header task,method,score")
    header = [c.strip().lower() for c in lines[0]]
    missing = {"task", "method", "score"} - set(header)
    if missing:
        raise ReportInputError(f"{path}:1: test-score CSV needs columns task, method, score "
                               f"(missing {sorted(missing)}; header {lines[0]})")
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if not any(x.strip() for x in fields):
            continue
        if len(fields) != len(header):
            raise ReportInputError(f"{path}:{number}: {len(fields)} fields, the header has {len(header)}: {fields}")
        row = dict(zip(header, (x.strip() for x in fields)))
        try:
            score = float(row["score"])
        except ValueError:
            raise ReportInputError(f"{path}:{number}: score {row['score']!r} is not a number") from None
        if not math.isfinite(score):
            raise ReportInputError(f"{path}:{number}: score {row['score']!r} is not a finite number")
        rank = row.get("rank") or None
        if rank is not None:
            try:
                rank = int(rank)
            except ValueError:
                raise ReportInputError(f"{path}:{number}: rank {row['rank']!r} is not a whole number") from None
        task = normalise_task(row["task"])
        fraction = score / 100.0 if abs(score) > 1 else score
        low = -1.0 if main_metric(run_task(task)) in NON_BERNOULLI else 0.0
        if not low <= fraction <= 1.0:
            raise ReportInputError(f"{path}:{number}: score {row['score']!r} for {row['task']} is outside "
                                   f"the metric's range: expected {low * 100:g} to 100 (or {low:g} to 1 as "
                                   "a fraction)")
        rows.append({"task": task, "method": row["method"].lower(), "score": fraction, "rank": rank,
                     "pooled": task == "mnli" and row["task"].strip().lower() == "mnli"})
    df = pd.DataFrame(rows, columns=cols)
    df["score"] = df["score"].astype(float)
    df["rank"] = pd.to_numeric(df["rank"], errors="coerce").astype("Int64")
    return df


def find_test_score(scores: pd.DataFrame, task: str, names: list[str], rank=None) -> float:
    return find_test_entry(scores, task, names, rank)[0]


def find_test_entry(scores: pd.DataFrame, task: str, names: list[str], rank=None) -> tuple[float, bool]:
    """(score, pooled): the test score of a cell, and whether it is MNLI's pooled number (given as plain
    ``mnli``; a score given as ``MNLI-m`` is preferred for the matched cell)."""
    if scores.empty:
        return math.nan, False
    sub = scores[(scores["task"] == task) & scores["method"].isin([n.lower() for n in names if n])]
    if rank is not None and not sub.empty and sub["rank"].notna().any():
        with_rank = sub[sub["rank"] == int(rank)]
        sub = with_rank if not with_rank.empty else sub[sub["rank"].isna()]
    if "pooled" in sub and len(sub) > 1 and (~sub["pooled"].astype(bool)).any():
        sub = sub[~sub["pooled"].astype(bool)]
    if sub.empty:
        return math.nan, False
    last = sub.iloc[-1]
    return float(last["score"]), bool(last.get("pooled", False))
