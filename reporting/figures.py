"""SymLoRA Figure 1 (per task and layer: ||lambda W0||_F, ||s dW||_F, their difference; one colour scale)
and a per-task bar chart with the 95% intervals. PNG and PDF, matplotlib's Agg backend."""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .tasks import display  # noqa: E402


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


def layer_norm_figure(runs_by_task: dict[str, list[str]], out_dir: Path, stem: str, title: str = "") -> list[Path]:
    """Heat maps task x layer of the seed-averaged (and target-averaged) norms; one shared colour scale."""
    frames = []
    for task, dirs in runs_by_task.items():
        df = load_layer_norms(dirs)
        if df.empty:
            continue
        df = df.dropna(subset=["layer"])
        # per run: mean over targets of a layer; then mean over seeds
        per_run = df.groupby(["run_dir", "layer"])[["base_norm", "delta_norm"]].mean().reset_index()
        g = per_run.groupby("layer")[["base_norm", "delta_norm"]].mean().reset_index()
        g["task"] = task
        frames.append(g)
    if not frames:
        return []
    data = pd.concat(frames, ignore_index=True)
    data["diff"] = data["base_norm"] - data["delta_norm"]
    tasks = list(dict.fromkeys(data["task"]))
    layers = sorted(int(x) for x in data["layer"].unique())
    panels = [("base_norm", r"$\|\lambda W_0\|_F$"), ("delta_norm", r"$\|s\,\Delta W\|_F$"),
              ("diff", r"$\|\lambda W_0\|_F - \|s\,\Delta W\|_F$")]
    mats = []
    for key, _ in panels:
        m = np.full((len(tasks), len(layers)), np.nan)
        for r in data.itertuples():
            m[tasks.index(r.task), layers.index(int(r.layer))] = getattr(r, key)
        mats.append(m)
    vmin = float(np.nanmin([np.nanmin(m) for m in mats]))
    vmax = float(np.nanmax([np.nanmax(m) for m in mats]))
    fig, axes = plt.subplots(1, 3, figsize=(2.5 + 0.22 * len(layers) * 3, 1.6 + 0.4 * len(tasks)),
                             constrained_layout=True)
    im = None
    for ax, (key, name), m in zip(axes, panels, mats):
        im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name)
        ax.set_xticks(range(len(layers)), [str(x) for x in layers], fontsize=7)
        ax.set_yticks(range(len(tasks)), [display(t) for t in tasks])
        ax.set_xlabel("layer")
    fig.colorbar(im, ax=list(axes), shrink=0.9, label="Frobenius norm (one scale)")
    if title:
        fig.suptitle(title)
    return _save(fig, out_dir, stem)


def bar_chart(long: pd.DataFrame, out_dir: Path, stem: str, title: str = "") -> list[Path]:
    """Per task, one bar per validation row (ours, with its 95% interval), published values as markers."""
    df = long[(long["split"] == "validation") & (long["task"] != "average")]
    if df.empty or not df["value"].notna().any():
        return []
    rows = list(dict.fromkeys(df["row"]))
    tasks = list(dict.fromkeys(df["task"]))
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(tasks) * max(1, len(rows)) ** 0.5 + 2), 3.6))
    x = np.arange(len(tasks))
    for i, label in enumerate(rows):
        sub = df[df["row"] == label].set_index("task").reindex(tasks)
        vals = sub["value"].astype(float).to_numpy()
        lo = (vals - sub["ci_low"].astype(float)).to_numpy()
        hi = (sub["ci_high"].astype(float) - vals).to_numpy()
        err = np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)])
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.nan_to_num(vals), width, yerr=err, capsize=2, label=label)
        pub = sub["published"].astype(float).to_numpy()
        if np.isfinite(pub).any():
            ax.scatter(pos, pub, marker="_", s=200, color="black", zorder=3,
                       label="published" if i == 0 else None)
    finite = df["value"].astype(float)
    lo_lim = max(0.0, math.floor(float(np.nanmin(finite)) / 10) * 10 - 10) if finite.notna().any() else 0
    ax.set_ylim(bottom=lo_lim)
    ax.set_xticks(x, [display(t) for t in tasks])
    ax.set_ylabel("validation score (%)")
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, stem)
