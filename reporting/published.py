"""The published numbers (results/reference/published_results.csv) and the GLUE server test scores."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .tasks import normalise_task

DEFAULT_PUBLISHED = Path(__file__).resolve().parent.parent / "results" / "reference" / "published_results.csv"


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    path = Path(path) if path else DEFAULT_PUBLISHED
    if not path.exists():
        return pd.DataFrame(columns=["source", "table", "method", "model", "trainable_params", "rank",
                                     "task", "split", "metric", "value", "plus_minus", "note"])
    df = pd.read_csv(path, dtype={"table": str, "trainable_params": str})
    df["task"] = df["task"].map(normalise_task)
    df["rank"] = pd.to_numeric(df["rank"], errors="coerce").astype("Int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["plus_minus"] = pd.to_numeric(df["plus_minus"], errors="coerce")
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

    Task names may be the server's ('SST-2', 'MNLI-m') or the Hub's ('sst2'); an optional ``rank``
    column restricts a score to that rank.
    """
    cols = ["task", "method", "score", "rank"]
    if not path:
        return pd.DataFrame(columns=cols)
    df = pd.read_csv(path)
    df.columns = [c.strip().lower() for c in df.columns]
    missing = {"task", "method", "score"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: test-score CSV needs columns task, method, score (missing {sorted(missing)})")
    df["task"] = df["task"].map(normalise_task)
    df["method"] = df["method"].astype(str).str.strip().str.lower()
    df["score"] = pd.to_numeric(df["score"], errors="coerce")
    df.loc[df["score"].abs() > 1, "score"] = df["score"] / 100.0  # percentages -> fractions
    if "rank" not in df.columns:
        df["rank"] = pd.NA
    df["rank"] = pd.to_numeric(df["rank"], errors="coerce").astype("Int64")
    return df[cols]


def find_test_score(scores: pd.DataFrame, task: str, names: list[str], rank=None) -> float:
    if scores.empty:
        return math.nan
    sub = scores[(scores["task"] == task) & scores["method"].isin([n.lower() for n in names if n])]
    if rank is not None and not sub.empty and sub["rank"].notna().any():
        with_rank = sub[sub["rank"] == int(rank)]
        sub = with_rank if not with_rank.empty else sub[sub["rank"].isna()]
    return math.nan if sub.empty else float(sub["score"].iloc[-1])
