"""Where a run lives: a directory derived from its configuration alone, so re-runs find it.

Layout and file formats: docs/run_directory.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Settings that change where or how a run executes, not what it computes.
NOT_IDENTITY = ("seed", "results_dir", "device", "logger", "log_every", "num_workers", "rerun",
                "eval_batch_size", "compile", "experiment", "pack")


def setting_name(cfg: DictConfig) -> str:
    """`lr=0.0005,bs=32,r=8,h=<hash of every other result-changing setting>`."""
    identity = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_IDENTITY:
        identity.pop(key, None)
    identity.pop("hydra", None)
    identity["data"] = {"source": cfg.data.source, "dir": cfg.data.dir}  # caches are not identity
    identity["init_from"] = init_identity(cfg)
    identity["model"] = {k: v for k, v in identity["model"].items() if k != "name"}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return f"lr={cfg.lr:g},bs={cfg.batch_size},r={cfg.adapter.rank},h={digest}"


def init_identity(cfg: DictConfig):
    """`init_from` as identity sees it: a run directory is named relative to <results_dir>/runs when it
    lies there (moving results_dir changes nothing), and a last part `seed=<this run's seed>` reads
    `seed=*`, so that the seeds of one setting, each started from the MNLI run of its own seed, share
    one setting name."""
    value = cfg.get("init_from")
    if value in (None, "none", "null", "mnli"):
        return value
    path = Path(str(value))
    if path.name == f"seed={cfg.seed}":
        path = path.parent / "seed=*"
    runs = Path(cfg.results_dir) / "runs"
    for inside, root in ((path, runs), (path.parent.resolve() / path.name, runs.resolve())):
        try:
            return str(inside.relative_to(root))
        except ValueError:
            pass
    return str(path)


def run_dir(cfg: DictConfig) -> Path:
    return (Path(cfg.results_dir) / "runs" / cfg.task.name / cfg.adapter.name / setting_name(cfg)
            / f"seed={cfg.seed}")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary file and rename it: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


def read_metrics(directory: Path) -> dict | None:
    path = Path(directory) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None
