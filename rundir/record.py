"""The one reader of run directories: ``read_run`` turns a directory into a typed ``RunRecord``.

Everything downstream (resume and skip decisions in training, the sweep's plan, the report's tables)
reads runs through it: nothing parses a setting name back or searches a config for spellings.

Status: ``done`` / ``failed`` (``metrics.json`` is there), ``unfinished`` (``config.yaml`` only: being
trained, interrupted or crashed), ``corrupt`` (``metrics.json`` or ``config.yaml`` cannot be read; the
reason names the file), ``missing`` (no run there at all).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from rundir.files import CONFIG, EPOCHS, METRICS

FINISHED = ("done", "failed")


@dataclass(frozen=True)
class RunRecord:
    directory: Path
    status: str                          # done, failed, unfinished, corrupt or missing
    reason: str | None = None            # why it failed or is corrupt
    config: dict = field(default_factory=dict, repr=False)    # config.yaml (resolved)
    metrics: dict = field(default_factory=dict, repr=False)   # metrics.json

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def _setting(self, key: str, default: Any = None) -> Any:
        """A setting as the run recorded it: metrics.json when finished, else config.yaml."""
        value = (self.metrics.get("hyperparameters") or {}).get(key)
        return value if value is not None else self.config.get(key, default)

    @property
    def task(self) -> str | None:
        return self.metrics.get("task") or (self.config.get("task") or {}).get("name")

    @property
    def method(self) -> str | None:
        return self.metrics.get("method") or (self.config.get("adapter") or {}).get("name")

    @property
    def seed(self) -> int | None:
        seed = self.metrics.get("seed", self.config.get("seed"))
        return int(seed) if seed is not None else None

    @property
    def setting(self) -> str | None:
        if self.metrics.get("setting"):
            return self.metrics["setting"]
        return self.directory.parent.name if self.config else None

    @property
    def lr(self) -> float | None:
        return self._setting("lr")

    @property
    def batch_size(self) -> int | None:
        return self._setting("batch_size")

    @property
    def rank(self) -> int | None:
        return self._setting("rank", None) or (self.config.get("adapter") or {}).get("rank")

    @property
    def experiment(self) -> str | None:
        """The protocol: the configs/experiment/ preset the run was composed with (None: none)."""
        return self.metrics.get("experiment", self.config.get("experiment"))

    @property
    def grid(self) -> str | None:
        """The sweep grid that launched the run (None: run by hand)."""
        return self.metrics.get("grid", self.config.get("grid_name"))

    @property
    def hyperparameters(self) -> dict:
        return self.metrics.get("hyperparameters") or {}

    @property
    def effective_batch(self) -> int | None:
        """Examples per optimiser step (batch_size × grad_accumulation)."""
        value = self.hyperparameters.get("effective_batch")
        if value is None and self.batch_size is not None:
            value = self.batch_size * (self._setting("grad_accumulation") or 1)
        return value

    @property
    def init_from(self) -> str | None:
        """The run directory this one started from (None: the pretrained model)."""
        value = self.hyperparameters.get("init_from", self.config.get("init_from"))
        return None if value in (None, "", "null", "none") else str(value)

    @property
    def adapter(self) -> dict:
        """The adapter's options as the run recorded them (name, rank, alpha, targets, options)."""
        return self.metrics.get("adapter") or self.config.get("adapter") or {}

    @property
    def frozen_init(self) -> str | None:
        """B-only's / A-only's frozen factor init (None for other methods)."""
        value = (self.adapter.get("options") or {}).get("frozen_init")
        return None if value is None else str(value).lower()

    @property
    def model(self) -> str | None:
        """What ``model.name_or_path`` was (a Hub name or a folder)."""
        return self.metrics.get("model") or (self.config.get("model") or {}).get("name_or_path")

    @property
    def precision(self) -> str | None:
        """What ran (bf16, fp32-tf32, fp32) when finished; what was asked for before."""
        return self.metrics.get("precision", self.config.get("precision"))

    @property
    def config_hash(self) -> str | None:
        return self.metrics.get("config_hash")

    @property
    def main_metric(self) -> str | None:
        return self.metrics.get("main_metric")

    def score(self, selection: str = "best_epoch") -> float | None:
        """The main validation metric of the best (or last) epoch; None when not done or NaN."""
        if self.status != "done":
            return None
        block = self.metrics.get("best" if selection == "best_epoch" else "last") or {}
        try:
            value = float(block.get(self.main_metric))
        except (TypeError, ValueError):
            return None
        return None if math.isnan(value) else value


def _read_json(path: Path) -> dict:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def read_run(directory: Path) -> RunRecord:
    """The record of the run in ``directory`` (never raises for a bad file: status ``corrupt``)."""
    directory = Path(directory)
    config: dict = {}
    config_path, metrics_path = directory / CONFIG, directory / METRICS
    if config_path.exists():
        try:
            config = yaml.safe_load(config_path.read_text()) or {}
            if not isinstance(config, dict):
                raise ValueError("not a mapping")
        except (OSError, ValueError, yaml.YAMLError) as error:
            return RunRecord(directory, "corrupt", f"{config_path}: unreadable ({error})")
    if metrics_path.exists():
        try:
            metrics = _read_json(metrics_path)
        except (OSError, ValueError) as error:
            return RunRecord(directory, "corrupt", f"{metrics_path}: unreadable ({error})", config)
        status = metrics.get("status")
        if status not in FINISHED:
            return RunRecord(directory, "corrupt", f"{metrics_path}: status {status!r} is neither "
                             "'done' nor 'failed'", config, metrics)
        return RunRecord(directory, status, metrics.get("reason"), config, metrics)
    if config:
        return RunRecord(directory, "unfinished", None, config)
    return RunRecord(directory, "missing")


def is_finished(directory: Path) -> bool:
    """The one answer to "is this run finished": its metrics.json and config.yaml read, and the
    status is done or failed. Training skips such a run, the sweep's plan counts it, the report scores
    it (when done), the verbs load it (when done); a damaged file makes it ``corrupt``, never finished."""
    return read_run(directory).finished


def read_epochs(directory: Path) -> list[dict]:
    """The run's per-epoch records (``epochs.jsonl``), in order. A line that is not a JSON object (a
    writer killed mid-line) ends the list: the epochs after it were never covered by a checkpoint."""
    path = Path(directory) / EPOCHS
    records = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if not isinstance(record, dict):
            break
        records.append(record)
    return records


def find_runs(results_dir: Path) -> Iterator[RunRecord]:
    """Every run under ``<results_dir>/runs``: a ``seed=<n>`` directory (the layout of rundir.identity)
    holding config.yaml or metrics.json. Files of the same names that trackers keep inside a run
    (W&B's ``wandb/**/config.yaml``) are not runs."""
    root = Path(results_dir) / "runs"
    seen = set()
    for name in (METRICS, CONFIG):
        for path in sorted(root.rglob(name)):
            if path.parent not in seen and path.parent.name.startswith("seed="):
                seen.add(path.parent)
                yield read_run(path.parent)
