"""SymLoRA Figure 1 (per task and layer: ||lambda W0||_F, ||s dW||_F, their difference; one colour scale),
a per-task bar chart with the intervals, each row's difference to a baseline row with its interval, and
learning curves (validation score and training loss per epoch). PNG and PDF, matplotlib's Agg backend.
Tasks in the table's order; legends sit under the plot, titles above it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rundir import read_epochs  # noqa: E402

from .collect import block_score  # noqa: E402
from .tasks import display, main_metric  # noqa: E402


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def load_layer_norms(run_dirs: list[str]) -> pd.DataFrame:
    """All layer_norms.json entries of the given runs, one row per (run, module)."""
    rows = []
    for d in run_dirs:
        p = Path(d) / "layer_norms.json"
        if not p.exists():
            continue
        try:
            entries = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for e in entries if isinstance(entries, list) else []:
            rows.append({"run_dir": d, "layer": e.get("layer"), "target": e.get("target"),
                         "base_norm": e.get("base_norm"), "delta_norm": e.get("delta_norm")})
    return pd.DataFrame(rows, columns=["run_dir", "layer", "target", "base_norm", "delta_norm"])


_PANELS = [("diff", r"$\|\lambda W_0\|_F - \|s\,\Delta W\|_F$"), ("base_norm", r"$\|\lambda W_0\|_F$"),
           ("delta_norm", r"$\|s\,\Delta W\|_F$")]
_METHOD_NAMES = {"symlora": "SymLoRA", "lora": "LoRA", "delora": "DeLoRA", "b_only": "B-only", "a_only": "A-only"}


def _per_layer(runs_by_task: dict[str, list[str]]) -> pd.DataFrame:
    """Per task and layer: norms averaged over a layer's targets within a run, then over seeds."""
    frames = []
    for task, dirs in runs_by_task.items():
        df = load_layer_norms(dirs).dropna(subset=["layer"])
        if df.empty:
            continue
        per_run = df.groupby(["run_dir", "layer"])[["base_norm", "delta_norm"]].mean().reset_index()
        g = per_run.groupby("layer")[["base_norm", "delta_norm"]].mean().reset_index()
        g["task"] = task
        frames.append(g)
    if not frames:
        return pd.DataFrame(columns=["layer", "base_norm", "delta_norm", "task", "diff"])
    data = pd.concat(frames, ignore_index=True)
    data["diff"] = data["base_norm"] - data["delta_norm"]
    return data


def layer_norm_figure(by_method: dict[str, dict[str, list[str]]], out_dir: Path, stem: str,
                      task_order: list[str] | None = None) -> list[Path]:
    """SymLoRA paper, Figure 1: one row per method (SymLoRA above LoRA), three panels (the difference
    ‖λW0‖ − ‖sΔW‖, ‖λW0‖, ‖sΔW‖), tasks across and layers down, seed- and target-averaged; each panel
    column shares one colour scale across methods. Values are printed in the cells when they fit."""
    data = {m: _per_layer(runs) for m, runs in by_method.items()}
    data = {m: d for m, d in data.items() if not d.empty}
    if not data:
        return []
    present = {t for d in data.values() for t in d["task"]}
    tasks = [t for t in (task_order or []) if t in present] + sorted(present - set(task_order or []))
    layers = sorted({int(x) for d in data.values() for x in d["layer"]})
    mats = {}
    for m, d in data.items():
        for key, _ in _PANELS:
            mat = np.full((len(layers), len(tasks)), np.nan)
            for r in d.itertuples():
                mat[layers.index(int(r.layer)), tasks.index(r.task)] = getattr(r, key)
            mats[m, key] = mat
    methods = list(data)
    annotate = len(layers) * len(tasks) <= 120
    fig, axes = plt.subplots(len(methods), 3, squeeze=False, constrained_layout=True,
                             figsize=(3 * max(2.2, 0.45 * len(tasks) + 1.2),
                                      len(methods) * max(1.8, 0.28 * len(layers) + 1.0)))
    for c, (key, title) in enumerate(_PANELS):
        vals = np.concatenate([mats[m, key].ravel() for m in methods])
        vmin, vmax = float(np.nanmin(vals)), float(np.nanmax(vals))
        im = None
        for r, m in enumerate(methods):
            ax = axes[r][c]
            im = ax.imshow(mats[m, key], aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_xticks(range(len(tasks)), [display(t) for t in tasks], rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(len(layers)), [str(x) for x in layers], fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{_METHOD_NAMES.get(m, m)}\nlayer")
            if r == 0:
                ax.set_title(title, fontsize=9)
            if annotate:
                for (i, j), v in np.ndenumerate(mats[m, key]):
                    if np.isfinite(v):
                        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6,
                                color="white" if v < (vmin + vmax) / 2 else "black")
        fig.colorbar(im, ax=[axes[r][c] for r in range(len(methods))], shrink=0.9, label="Frobenius norm")
    return _save(fig, out_dir, stem)


METRIC_NAMES = {"accuracy": "accuracy (%)", "accuracy_matched": "accuracy (%)", "accuracy_mismatched": "accuracy (%)",
                "accuracy_overall": "accuracy (%)",
                "matthews": "Matthews corr. (×100)", "pearson": "Pearson corr. (×100)"}
METRIC_SHORT = {"matthews": "MCC", "pearson": "Pearson"}
PUBLISHED_STYLE = dict(marker="D", s=22, facecolors="white", edgecolors="black", linewidths=0.9, zorder=4)
ERROR_STYLE = dict(ecolor="0.35", elinewidth=0.8, capsize=2)


def _task_label(task: str, metric: str, tasks: list[str]) -> str:
    names = {"mnli_mm": "MNLI-mm", "mnli": "MNLI-m" if "mnli_mm" in tasks else "MNLI", "mnli_all": "MNLI",
             "average": "Avg."}
    name = names.get(task, display(task))
    return f"{name}\n({METRIC_SHORT[metric]})" if metric in METRIC_SHORT else name


def _legend_below(fig, ax, handles, labels) -> None:
    """The legend under the plot, the title above it: they never overlap, whatever the entries."""
    if handles:
        fig.legend(handles, labels, fontsize=7, ncol=min(3, len(labels)), loc="upper center",
                   bbox_to_anchor=(0.5, 0.0), frameon=False)


def _task_grid(df: pd.DataFrame, height: float):
    """A figure of one group per task (the table's order, the frame's) with a slot per row:
    (fig, ax, rows, tasks, metric of each task, group centres, slot width)."""
    rows = list(dict.fromkeys(df["row"]))
    tasks = list(dict.fromkeys(df["task"]))
    metric = {t: df[df["task"] == t]["metric"].iloc[0] for t in tasks}
    fig, ax = plt.subplots(figsize=(max(4.0, 0.75 * len(tasks) * max(1, len(rows)) ** 0.5 + 1.5), height))
    return fig, ax, rows, tasks, metric, np.arange(len(tasks)), 0.8 / max(len(rows), 1)


def bar_chart(long: pd.DataFrame, out_dir: Path, stem: str, title: str = "") -> list[Path]:
    """Validation scores per task in the table's task order (correlations ×100, marked on the axis):
    one bar per row of ours with its interval, the published value as a hollow diamond; a row without
    a score on a task draws no bar and says "no runs" there. The y-axis starts at zero (or below, for
    a negative correlation)."""
    if long.empty or "split" not in long:
        return []
    df = long[(long["split"] == "validation") & (long["task"] != "average")]
    if df.empty or not df["value"].notna().any():
        return []
    fig, ax, rows, tasks, metric, x, width = _task_grid(df, height=3.4)
    for i, label in enumerate(rows):
        sub = df[df["row"] == label].set_index("task").reindex(tasks)
        vals = sub["value"].astype(float).to_numpy()
        pos = x - 0.4 + width * (i + 0.5)
        have = np.isfinite(vals)
        lo = np.nan_to_num(vals - sub["ci_low"].astype(float).to_numpy())[have]
        hi = np.nan_to_num(sub["ci_high"].astype(float).to_numpy() - vals)[have]
        ax.bar(pos[have], vals[have], width, yerr=np.vstack([lo, hi]), color=f"C{i}", error_kw=ERROR_STYLE)
        for xp in pos[~have]:
            ax.text(xp, 1.0, "no runs", rotation=90, ha="center", va="bottom", fontsize=5, color="0.4")
        pub = sub["published"].astype(float).to_numpy()
        if np.isfinite(pub).any():
            ax.scatter(pos, pub, label="published", **PUBLISHED_STYLE)
    lowest = np.nanmin(np.append(df["ci_low"].astype(float).to_numpy(), 0.0))
    ax.set_ylim(bottom=min(0.0, 10 * math.floor(lowest / 10)), top=100)
    ax.set_xticks(x, [_task_label(t, metric[t], tasks) for t in tasks], fontsize=7)
    ax.set_ylabel("score (accuracy %; correlations ×100)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    # one legend entry per row in its colour, bars or not (a row without runs says so at its place)
    handles = [Patch(facecolor=f"C{i}", label=label) for i, label in enumerate(rows)]
    published = [c for c in ax.collections if c.get_label() == "published"][:1]
    fig.tight_layout()
    _legend_below(fig, ax, handles + published, rows + ["published"] * len(published))
    return _save(fig, out_dir, stem)


def difference_chart(diffs: pd.DataFrame, out_dir: Path, stem: str, title: str = "") -> list[Path]:
    """Per task (the table's order), each row's difference to the baseline row in points with its 95%
    interval (reporting.statistics.difference_interval), zero marked: the one-point differences a
    0-100 axis hides. ``diffs``: columns row, baseline, task, metric, diff, low, high."""
    if diffs.empty or not diffs["diff"].notna().any():
        return []
    fig, ax, rows, tasks, metric, x, width = _task_grid(diffs, height=3.0)
    for i, label in enumerate(rows):
        sub = diffs[diffs["row"] == label].set_index("task").reindex(tasks)
        d = sub["diff"].astype(float).to_numpy()
        have = np.isfinite(d)
        pos = (x - 0.4 + width * (i + 0.5))
        lo = np.nan_to_num(d - sub["low"].astype(float).to_numpy())[have]
        hi = np.nan_to_num(sub["high"].astype(float).to_numpy() - d)[have]
        ax.errorbar(pos[have], d[have], yerr=np.vstack([lo, hi]), fmt="o", markersize=4, color=f"C{i}",
                    label=label, capsize=2, elinewidth=0.9)
        for xp in pos[~have]:
            ax.text(xp, 0.0, "no runs", rotation=90, ha="center", va="bottom", fontsize=5, color="0.4")
    ax.axhline(0.0, color="0.5", linewidth=0.8, zorder=0)
    ax.set_xticks(x, [_task_label(t, metric[t], tasks) for t in tasks], fontsize=7)
    ax.set_ylabel(f"difference to {diffs['baseline'].iloc[0]} (points)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout()
    _legend_below(fig, ax, handles, labels)
    return _save(fig, out_dir, stem)


def load_curves(runs: dict[str, dict[str, list[str]]]) -> pd.DataFrame:
    """One row per (table row, task, run, epoch) from the runs' epochs.jsonl: the task's main
    validation metric (×100, as the tables print it) and the epoch's mean training loss."""
    rows = []
    for label, by_task in runs.items():
        for task, dirs in by_task.items():
            metric = main_metric(task)
            for d in dirs:
                for e in read_epochs(Path(d)):
                    rows.append({"row": label, "task": task, "run_dir": d, "epoch": e.get("epoch"),
                                 "score": 100 * block_score(e.get("validation"), metric),
                                 "train_loss": e.get("train_loss")})
    return pd.DataFrame(rows, columns=["row", "task", "run_dir", "epoch", "score", "train_loss"])


def learning_curves(runs: dict[str, dict[str, list[str]]], out_dir: Path, stem: str,
                    task_order: list[str] | None = None) -> list[Path]:
    """Per task (columns): the main validation metric (top) and the training loss (bottom) against the
    epoch, one line per table row: the mean over its seeds, shaded between the lowest and highest seed."""
    data = load_curves(runs).dropna(subset=["epoch"])
    if data.empty:
        return []
    present = set(data["task"])
    tasks = [t for t in (task_order or []) if t in present] + sorted(present - set(task_order or []))
    labels = list(dict.fromkeys(data["row"]))
    fig, axes = plt.subplots(2, len(tasks), squeeze=False, sharex="col", constrained_layout=True,
                             figsize=(max(3.5, 2.6 * len(tasks)), 4.6))
    for c, task in enumerate(tasks):
        for i, label in enumerate(labels):
            sub = data[(data["task"] == task) & (data["row"] == label)]
            if sub.empty:
                continue
            for r, key in enumerate(("score", "train_loss")):
                g = sub.groupby("epoch")[key].agg(["mean", "min", "max", "count"]).reset_index()
                ax = axes[r][c]
                ax.plot(g["epoch"], g["mean"], marker="o", markersize=3, color=f"C{i}",
                        label=f"{label} (n={int(g['count'].max())})" if c == 0 and r == 0 else None)
                ax.fill_between(g["epoch"], g["min"], g["max"], color=f"C{i}", alpha=0.2, linewidth=0)
        axes[0][c].set_title(display(task), fontsize=9)
        axes[0][c].set_ylabel(METRIC_NAMES.get(main_metric(task), main_metric(task)), fontsize=8)
        axes[1][c].set_ylabel("training loss", fontsize=8)
        axes[1][c].set_xlabel("epoch", fontsize=8)
        axes[1][c].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(fontsize=7, ncol=min(4, len(labels)), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return _save(fig, out_dir, stem)
