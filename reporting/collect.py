"""Scan ``<results_dir>/runs/**`` (layout of docs/run_directory.md) into one pandas table.

A run directory is a ``seed=<n>`` directory holding ``config.yaml`` and/or ``metrics.json``:
``metrics.json`` present -> its ``status`` ("done" / "failed"); ``config.yaml`` only -> "missing"
(started, unfinished or crashed without writing metrics). Scores stay fractions here.

Variant rule (which paper row a run belongs to), see :func:`identify_variant`: the DeLoRA report's
Table 3 methods have names of their own in the harness (`adapter=lora_of_lora`, `adapter=lora_head_only`,
both started from an MNLI LoRA run); every other run belongs to its method's row. (LoRA, SymLoRA and
DeLoRA runs started from their MNLI run, the LoRA paper's protocol, keep their method.)
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .tasks import main_metric, normalise_task

RUN_COLUMNS = [
    "task", "method", "variant", "rank", "lr", "batch_size", "seed", "setting", "status", "reason",
    "metric", "best_epoch", "best_score", "last_epoch", "last_score", "best_mismatched", "last_mismatched",
    "trainable_adapter", "trainable_with_head", "model", "experiment", "grid", "effective_batch", "precision",
    "init_from", "frozen_init", "has_layer_norms", "has_predictions", "rows_skipped", "run_dir",
]

_FROZEN_INIT_KEYS = ("frozen_init", "frozen_factor_init", "fixed_init", "frozen_init_method")


def parse_setting(setting: str) -> dict[str, Any]:
    """'lr=0.0005,bs=32,r=8,h=1a2b3c4d' -> {'lr': 0.0005, 'batch_size': 32, 'rank': 8, 'hash': '1a2b3c4d'}."""
    out: dict[str, Any] = {}
    for part in str(setting).split(","):
        if "=" not in part:
            continue
        key, value = part.split("=", 1)
        key = key.strip()
        try:
            if key == "lr":
                out["lr"] = float(value)
            elif key == "bs":
                out["batch_size"] = int(value)
            elif key == "r":
                out["rank"] = int(value)
            elif key == "h":
                out["hash"] = value
        except ValueError:
            pass
    return out


def _find_key(obj: Any, keys: tuple[str, ...]) -> Any:
    """First non-null value of any of ``keys`` anywhere in a nested dict/list."""
    if isinstance(obj, dict):
        for k in keys:
            if obj.get(k) not in (None, ""):
                return obj[k]
        for v in obj.values():
            found = _find_key(v, keys)
            if found not in (None, ""):
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = _find_key(v, keys)
            if found not in (None, ""):
                return found
    return None


def identify_variant(method: str | None, experiment: str | None = None, init_from: Any = None) -> str | None:
    """The row a run belongs to (see the module docstring for the rule)."""
    if method is None:
        return None
    return {"lora_of_lora": "delora_on_mnli_lora", "lora_head_only": "head_only_on_mnli_lora"}.get(
        str(method).lower(), str(method).lower())


def _load_yaml(path: Path) -> dict:
    try:
        import yaml

        with open(path) as f:
            data = yaml.safe_load(f)
        return data if isinstance(data, dict) else {}
    except Exception:  # noqa: BLE001 - an unreadable config must not stop the report
        return {}


def _score(block: Any, metric: str, fallback: str | None) -> float:
    if not isinstance(block, dict):
        return math.nan
    for key in (metric, fallback, "accuracy" if metric == "accuracy_matched" else None):
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


def _seed_from_dir(d: Path) -> int | None:
    m = re.fullmatch(r"seed=(-?\d+)", d.name)
    return int(m.group(1)) if m else None


def _run_dirs(runs_root: Path) -> list[Path]:
    dirs = {p.parent for p in runs_root.rglob("metrics.json")}
    dirs |= {p.parent for p in runs_root.rglob("config.yaml") if _seed_from_dir(p.parent) is not None}
    # a checkpoint/ subfolder is never a run directory
    return sorted(d for d in dirs if "checkpoint" not in d.relative_to(runs_root).parts)


def read_run(run_dir: Path, runs_root: Path) -> dict[str, Any]:
    rel = run_dir.relative_to(runs_root).parts
    path_task = rel[0] if len(rel) >= 4 else None
    path_method = rel[1] if len(rel) >= 4 else None
    path_setting = rel[-2] if len(rel) >= 2 else ""
    metrics: dict = {}
    mpath = run_dir / "metrics.json"
    if mpath.exists():
        try:
            metrics = json.loads(mpath.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            metrics = {"status": "failed", "reason": f"unreadable metrics.json: {exc}"}
    config = _load_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").exists() else {}
    hp = metrics.get("hyperparameters") or {}
    setting = metrics.get("setting") or path_setting
    parsed = parse_setting(setting)
    task = normalise_task(metrics.get("task") or path_task or _find_key(config, ("task",)) or "")
    method = metrics.get("method") or path_method or _find_key(config, ("method",))
    if isinstance(method, dict):  # a Hydra group node
        method = method.get("name")
    experiment = metrics.get("experiment") or _find_key(config, ("experiment",))
    if isinstance(experiment, dict):
        experiment = experiment.get("name")
    init_from = hp.get("init_from") if "init_from" in hp else _find_key(config, ("init_from",))
    frozen_init = _find_key(hp, _FROZEN_INIT_KEYS) or _find_key(config, _FROZEN_INIT_KEYS)
    metric = main_metric(task)
    status = str(metrics.get("status", "missing")) if metrics else "missing"
    seed = metrics.get("seed", _seed_from_dir(run_dir))
    trainable = metrics.get("trainable") or {}
    pred_dir = run_dir / "predictions"
    return {
        "task": task,
        "method": method,
        "variant": identify_variant(method, experiment, init_from),
        "rank": hp.get("rank", parsed.get("rank")),
        "lr": hp.get("lr", parsed.get("lr")),
        "batch_size": hp.get("batch_size", parsed.get("batch_size")),
        "seed": seed,
        "setting": setting,
        "status": status,
        "reason": metrics.get("reason"),
        "metric": metric,
        "best_epoch": metrics.get("best_epoch"),
        "best_score": _score(metrics.get("best"), metric, metrics.get("main_metric")),
        "last_epoch": metrics.get("last_epoch"),
        "last_score": _score(metrics.get("last"), metric, metrics.get("main_metric")),
        # MNLI's mismatched accuracy at the epoch chosen by the matched one (the papers' MNLI-mm)
        "best_mismatched": _score(metrics.get("best"), "accuracy_mismatched", None) if task == "mnli" else math.nan,
        "last_mismatched": _score(metrics.get("last"), "accuracy_mismatched", None) if task == "mnli" else math.nan,
        "trainable_adapter": trainable.get("adapter"),
        "trainable_with_head": trainable.get("with_head"),
        "model": metrics.get("model") or _find_key(config, ("model_name", "pretrained", "name_or_path")),
        "experiment": experiment,  # the protocol: configs/experiment/<name> and the sweep grid
        "grid": metrics.get("grid"),
        "effective_batch": hp.get("effective_batch", hp.get("batch_size", parsed.get("batch_size"))),
        "precision": metrics.get("precision", hp.get("precision")),
        "init_from": None if init_from in (None, "") else str(init_from),
        "frozen_init": None if frozen_init is None else str(frozen_init).lower(),
        "has_layer_norms": (run_dir / "layer_norms.json").exists(),
        "has_predictions": pred_dir.is_dir() and any(pred_dir.glob("*.tsv")),
        "rows_skipped": _rows_skipped(metrics.get("data")),
        "run_dir": str(run_dir),
    }


def collect_runs(results_dir: str | Path) -> pd.DataFrame:
    """Every run (done, failed, missing) under ``results_dir/runs`` as one DataFrame (fractions)."""
    runs_root = Path(results_dir) / "runs"
    if not runs_root.is_dir():
        return pd.DataFrame(columns=RUN_COLUMNS)
    rows = [read_run(d, runs_root) for d in _run_dirs(runs_root)]
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    for col in ("rank", "batch_size", "seed", "best_epoch", "last_epoch", "trainable_adapter",
                "trainable_with_head", "effective_batch"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("lr", "best_score", "last_score", "best_mismatched", "last_mismatched"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df.sort_values(["task", "variant", "rank", "setting", "seed"], na_position="last",
                          ignore_index=True)


def load_choices(results_dir: str | Path, grid: str | None = None) -> list[dict]:
    """The sweeps' ``choices.json`` entries (all grids, sorted by name; later grids win on conflict)."""
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
        except (OSError, json.JSONDecodeError):
            continue
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict):
                out.append({**entry, "task": normalise_task(entry.get("task", "")), "grid": p.parent.name})
    return out
