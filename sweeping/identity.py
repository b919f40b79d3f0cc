"""A run's identity: its configuration, composed as ``python train.py <overrides>`` composes it, and
the directory rundir.run_dir derives from it. Nothing else (no sweep name, no stage, no job
number) enters it, so every grid that contains a run finds the same directory.

Composing through Hydra costs milliseconds per call and a paper table is hundreds of runs, so the
config of a group's shared overrides is composed once and lr / batch_size / seed / init_from, which
are top-level values in train.yaml, are then set on a copy: the same result as the override (a
unit test checks it against a full compose).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

import rundir
from rundir import run_dir
from training.config import CONFIG_DIR, resolved

TRAIN_CONFIG = "train"


def quote(value: str) -> str:
    """A string override value Hydra's grammar reads back verbatim (run dirs hold ',' and '=')."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_overrides(base: Sequence[str], lr: float | None, batch_size: int | None, seed: int,
                  init_from: str | None = None, rerun: bool = False) -> list[str]:
    """The full override list of one run: what the job (and `python train.py ...`) is given."""
    out = list(base)
    if lr is not None:
        out.append(f"lr={lr!r}")
    if batch_size is not None:
        out.append(f"batch_size={batch_size}")
    out.append(f"seed={seed}")
    if init_from is not None:
        out.append(f"init_from={quote(init_from)}")
    if rerun:
        out.append("rerun=true")
    return out


def compose_unresolved(overrides: Sequence[str]) -> DictConfig:
    """train.yaml with ``overrides``, unresolved (inside a running Hydra app or outside one)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=TRAIN_CONFIG, overrides=list(overrides))
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        return compose(config_name=TRAIN_CONFIG, overrides=list(overrides))


class Composer:
    """Resolved run configs, with the Hydra composition of each group's overrides cached."""

    def __init__(self):
        self._base: dict[tuple[str, ...], DictConfig] = {}

    def base(self, overrides: Sequence[str]) -> DictConfig:
        key = tuple(overrides)
        if key not in self._base:
            self._base[key] = compose_unresolved(key)
        return self._base[key]

    def config(self, base: Sequence[str], lr: float | None = None, batch_size: int | None = None,
               seed: int | None = None, init_from: str | None = None) -> DictConfig:
        cfg = copy.deepcopy(self.base(base))
        for key, value in (("lr", lr), ("batch_size", batch_size), ("seed", seed), ("init_from", init_from)):
            if value is not None:
                cfg[key] = value
        return resolved(cfg)


@dataclass(frozen=True)
class Status:
    """What is on disk for a run directory: missing, done or failed (with the metrics when finished)."""
    state: str                    # "missing", "done" or "failed"
    metrics: dict | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def score(self) -> float | None:
        """The best epoch's main validation metric (None when not done or not a number)."""
        if self.state != "done" or not self.metrics:
            return None
        value = (self.metrics.get("best") or {}).get(self.metrics.get("main_metric"))
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return None if value != value else value  # NaN: no score


def status(directory: Path | None) -> Status:
    """Read through rundir.read_run; an unfinished or corrupt run is still to do ("missing"): training
    resumes the first and replaces the second's unreadable metrics.json."""
    if directory is None:
        return Status("missing")
    record = rundir.read_run(directory)
    return Status(record.status, record.metrics) if record.finished else Status("missing")


__all__ = ["Composer", "Status", "compose_unresolved", "quote", "run_dir", "run_overrides", "status"]
