"""The efficiency frontier: each method's main metric (per task, and averaged over the tasks) against
its trainable adapter parameters on a log axis, with the confidence interval as a vertical bar; the
Pareto-best methods (no other method has as few parameters or fewer and a score as high or higher)
joined by a line and labelled in bold. PNG and PDF, matplotlib's Agg backend."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from .figures import _save  # noqa: E402
from .tasks import display  # noqa: E402

AVERAGE = "average"


def pareto_best(points: pd.DataFrame) -> list[str]:
    """Labels (column ``row``) of the points that no other point dominates, by ``params`` (fewer is
    better) and ``value`` (higher is better), in order of ``params``. Ties in both keep every point."""
    best = []
    for p in points.itertuples():
        dominated = ((points["params"] <= p.params) & (points["value"] >= p.value)
                     & ((points["params"] < p.params) | (points["value"] > p.value))).any()
        if not dominated:
            best.append(p)
    return [p.row for p in sorted(best, key=lambda p: (p.params, -p.value))]


def frontier_points(long: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """One point per (row, task) of a preset's long table (reporting/build.py) with a finite score
    and a trainable count: ``row, task, params, value, half_width`` (percentage points). The
    ``average`` panel takes the rows with a score on every task: their mean and, the tasks' seeds being
    independent, the half-width √(Σ hᵢ²)/T of that mean."""
    df = long[(long["split"] == "validation") & long["task"].isin(tasks)]
    df = df[df["value"].notna() & df["trainable_adapter"].notna()]
    points = pd.DataFrame({"row": df["row"], "task": df["task"], "params": df["trainable_adapter"].astype(float),
                           "value": df["value"].astype(float), "half_width": df["half_width"].astype(float)})
    averages = []
    for label, sub in points.groupby("row", sort=False):
        if set(sub["task"]) >= set(tasks) and len(tasks) > 1:
            sub = sub.drop_duplicates("task")
            hw = math.sqrt((sub["half_width"] ** 2).sum()) / len(sub) if sub["half_width"].notna().all() else math.nan
            averages.append({"row": label, "task": AVERAGE, "params": sub["params"].max(),
                             "value": sub["value"].mean(), "half_width": hw})
    return pd.concat([points, pd.DataFrame(averages, columns=points.columns)], ignore_index=True)


def frontier_figure(long: pd.DataFrame, tasks: list[str], out_dir: Path, stem: str, title: str = "") -> list[Path]:
    """One panel per task and one for the average; returns the PNG and PDF paths (none without points)."""
    points = frontier_points(long, tasks)
    if points.empty:
        return []
    panels = [t for t in [*tasks, AVERAGE] if (points["task"] == t).any()]
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False, figsize=(3.4 * columns, 2.9 * rows))
    colours = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(points["row"]))}
    for ax, task in zip(axes.flat, panels):
        sub = points[points["task"] == task]
        for p in sub.itertuples():
            ax.errorbar(p.params, p.value, yerr=0 if math.isnan(p.half_width) else p.half_width, fmt="o",
                        ms=4, capsize=2, color=colours[p.row], label=p.row)
        front = sub.set_index("row").loc[pareto_best(sub)]
        ax.plot(front["params"], front["value"], "-", color="black", lw=1, zorder=0)
        for label, p in sub.set_index("row").iterrows():
            on_front = label in front.index
            ax.annotate(label, (p["params"], p["value"]), xytext=(3, 3), textcoords="offset points",
                        fontsize=6, fontweight="bold" if on_front else "normal",
                        color="black" if on_front else "grey")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide on a narrow range
        ax.margins(x=0.15)
        ax.set_title("Average over tasks" if task == AVERAGE else display(task), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("trainable parameters (adapter)", fontsize=7)
        ax.set_ylabel("score (%)", fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, stem)
