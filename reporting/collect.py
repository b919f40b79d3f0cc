"""Every run under ``<results_dir>/runs`` (docs/run_directory.md) as one pandas table, read through the
one run-directory reader, ``rundir.read_run``.

Status: ``done`` / ``failed`` as metrics.json says; ``missing`` for a run with only config.yaml
(started, unfinished or crashed without writing metrics); a run whose metrics.json or config.yaml
cannot be read counts as ``failed``, its reason naming the file. ``outcome`` names why a run has no
score (see :func:`outcome`). Scores stay fractions here.

Variant rule (which paper row a run belongs to), see :func:`identify_variant`: the DeLoRA report's
Table 3 methods have names of their own in the harness (`adapter=lora_of_lora`, `adapter=lora_head_only`,
both started from an MNLI LoRA run); every other run belongs to its method's row. (LoRA, SymLoRA and
DeLoRA runs started from their MNLI run, the LoRA paper's protocol, keep their method.)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from rundir import RunRecord, find_runs

from .published import ReportInputError
from .tasks import main_metric, mnli_overall, normalise_task

RUN_COLUMNS = [
    "task", "method", "variant", "rank", "lr", "batch_size", "seed", "setting", "status", "reason",
    "metric", "best_epoch", "best_score", "last_epoch", "last_score", "best_mismatched", "last_mismatched",
    "best_overall", "last_overall", "trainable_adapter", "trainable_with_head", "model", "experiment", "grid", "effective_batch", "precision",
    "init_from", "frozen_init", "has_layer_norms", "has_predictions", "rows_skipped", "engine", "outcome",
    "run_dir",
]

# rundir's statuses as the report counts them: a run not finished is missing; an unreadable one failed
_STATUS = {"done": "done", "failed": "failed", "unfinished": "missing", "corrupt": "failed"}
NO_ENGINE = "—"  # metrics.json without an ``engine`` field (written before the field existed)


def outcome(status: str, reason: str | None) -> str:
    """What became of a run, as the tables name it: done, diverged (NaN), crashed, unreadable
    (metrics.json or config.yaml cannot be read; the reason names the file) or missing."""
    if status == "corrupt":
        return "unreadable"
    if status == "failed":
        text = str(reason or "").lower()
        return "diverged (NaN)" if "non-finite" in text or "nan" in text.split() or "nan loss" in text else "crashed"
    return _STATUS.get(status, status)


def identify_variant(method: str | None) -> str | None:
    """The row a run belongs to (see the module docstring for the rule)."""
    if method is None:
        return None
    return {"lora_of_lora": "delora_on_mnli_lora", "lora_head_only": "head_only_on_mnli_lora"}.get(
        str(method).lower(), str(method).lower())


def block_score(block: Any, metric: str) -> float:
    """``metric`` of a best/last block (MNLI's matched accuracy is recorded as ``accuracy``)."""
    if not isinstance(block, dict):
        return math.nan
    for key in (metric, "accuracy" if metric == "accuracy_matched" else None):
        if key and block.get(key) is not None:
            try:
                return float(block[key])
            except (TypeError, ValueError):
                return math.nan
    return math.nan


def _rows_skipped(data: Any) -> int:
    """Malformed data rows the run skipped, all splits together (metrics.json ``data``)."""
    if not isinstance(data, dict):
        return 0
    return sum(int(r.get("rows_skipped") or 0) for r in data.values() if isinstance(r, dict))


def _overall(block: Any, metric: str) -> float:
    return mnli_overall(block_score(block, metric), block_score(block, "accuracy_mismatched"))


def run_row(record: RunRecord) -> dict[str, Any]:
    """One run as a row of the report's run table."""
    m = record.metrics
    task = normalise_task(record.task or "")
    metric = main_metric(task)
    trainable = m.get("trainable") or {}
    pred_dir = record.directory / "predictions"
    mnli = task == "mnli"
    return {
        "task": task, "method": record.method, "variant": identify_variant(record.method),
        "rank": record.rank, "lr": record.lr, "batch_size": record.batch_size, "seed": record.seed,
        "setting": record.setting, "status": _STATUS[record.status], "reason": record.reason,
        "metric": metric,
        "best_epoch": m.get("best_epoch"), "best_score": block_score(m.get("best"), metric),
        "last_epoch": m.get("last_epoch"), "last_score": block_score(m.get("last"), metric),
        # MNLI's mismatched accuracy at the epoch chosen by the matched one (the papers' MNLI-mm)
        "best_mismatched": block_score(m.get("best"), "accuracy_mismatched") if mnli else math.nan,
        "last_mismatched": block_score(m.get("last"), "accuracy_mismatched") if mnli else math.nan,
        # both sets together at that epoch (the DeLoRA report's MNLI "overall accuracy")
        "best_overall": _overall(m.get("best"), metric) if mnli else math.nan,
        "last_overall": _overall(m.get("last"), metric) if mnli else math.nan,
        "trainable_adapter": trainable.get("adapter"), "trainable_with_head": trainable.get("with_head"),
        "model": record.model,
        "experiment": record.experiment,  # the protocol: configs/experiment/<name> and the sweep grid
        "grid": record.grid, "effective_batch": record.effective_batch, "precision": record.precision,
        "init_from": record.init_from, "frozen_init": record.frozen_init,
        "has_layer_norms": (record.directory / "layer_norms.json").exists(),
        "has_predictions": pred_dir.is_dir() and any(pred_dir.glob("*.tsv")),
        "rows_skipped": _rows_skipped(m.get("data")),
        "engine": m.get("engine") or NO_ENGINE,  # reference | fused (training/), as metrics.json records it
        "outcome": outcome(record.status, record.reason),
        "run_dir": str(record.directory),
    }


def collect_runs(results_dir: str | Path) -> pd.DataFrame:
    """Every run (done, failed, missing) under ``results_dir/runs`` as one DataFrame (fractions)."""
    runs_root = Path(results_dir) / "runs"
    if not runs_root.is_dir():
        return pd.DataFrame(columns=RUN_COLUMNS)
    rows = [run_row(record) for record in find_runs(results_dir)]
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    for col in ("rank", "batch_size", "seed", "best_epoch", "last_epoch", "trainable_adapter",
                "trainable_with_head", "effective_batch"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("lr", "best_score", "last_score", "best_mismatched", "last_mismatched", "best_overall",
                "last_overall"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df.sort_values(["task", "variant", "rank", "setting", "seed"], na_position="last",
                          ignore_index=True)


def load_choices(results_dir: str | Path, grid: str | None = None) -> list[dict]:
    """The sweeps' ``choices.json`` entries (all grids, sorted by name; later grids win on conflict).
    An unreadable file is an error naming it, never a silent fall-back to the best mean."""
    root = Path(results_dir) / "sweeps"
    if not root.is_dir():
        return []
    paths = [root / grid / "choices.json"] if grid else sorted(root.glob("*/choices.json"))
    out: list[dict] = []
    for p in paths:
        if not p.exists():
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ReportInputError(f"{p}: unreadable ({error}); the sweep writes it again when rerun, "
                                   "or setting=best_mean reports without it") from None
        if not isinstance(data, list) or not all(isinstance(e, dict) and "setting" in e for e in data):
            raise ReportInputError(f"{p}: expected a JSON list of objects with task, method, setting "
                                   f"(as the sweep writes it), found {type(data).__name__}")
        for entry in data:
            out.append({**entry, "task": normalise_task(entry.get("task", "")), "grid": p.parent.name})
    return out
