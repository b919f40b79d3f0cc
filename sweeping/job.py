"""The task function a Hydra launcher runs for each job: training.entry.train, as train.py calls it.

The job's config is composed from train.yaml with the job's overrides (the sweep points the
launcher at it), i.e. exactly what ``python train.py <overrides>`` runs, so the run directory is
the same, with its commands.jsonl (the sweep's command line, the job's overrides) and train.log.
The object is pickled to the workers (joblib, submitit): keep it plain.

With a GPU pool (``gpus=N`` or ``gpus=[0,2]``), each job takes a free GPU of the pool for its
duration (an exclusive file lock per GPU, machine-local, in a folder only the user can enter) and runs on it (``device=cuda:<i>``): with
the joblib launcher running N jobs at once, that is one run per GPU.
"""
from __future__ import annotations

import fcntl
import os
import stat
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, open_dict

import training.config  # noqa: F401  (registers the config resolvers in worker processes)


def gpu_pool(gpus) -> list[int]:
    """``gpus`` (a count, a list of indices, "0,2" or None) as a list of GPU indices."""
    if gpus in (None, "", 0, "null", "none"):
        return []
    if isinstance(gpus, int):
        return list(range(gpus))
    if isinstance(gpus, str):
        return [int(g) for g in gpus.split(",") if g.strip()]
    return [int(g) for g in gpus]


def gpu_count(gpus) -> int:
    """For launcher presets: ``n_jobs: ${sweep_gpu_count:${gpus}}``."""
    return max(len(gpu_pool(gpus)), 1)


def lock_dir() -> Path:
    """$XDG_RUNTIME_DIR (per user, mode 0700) when there is one, else a 0700 folder of ours under the
    temporary directory. A folder there that is not ours, or is a link, is refused: another user could
    otherwise plant links in it and have us open their targets."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
    path = base / f"glue-sweep-gpu-locks-{os.getuid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} is not a private folder of this user (a link, another owner, or open "
                              "to others): remove it, or set XDG_RUNTIME_DIR to a private folder")
    return path


def open_lock(path: Path) -> int:
    """The lock file, created if needed, never truncated and never reached through a link."""
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)


@contextmanager
def claim_gpu(pool: list[int], directory: Path | None = None, poll_s: float = 1.0):
    """Hold an exclusive lock on one GPU of ``pool`` (waiting for one to be free); yields its index."""
    directory = directory or lock_dir()
    while True:
        for gpu in pool:
            fd = open_lock(directory / f"gpu{gpu}.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield gpu
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        time.sleep(poll_s)


class TrainJob:
    """Train one job's run, or its pack of runs (``pack.members``, sweeping.packing); return the
    metrics dict of each run (a list for a pack)."""

    def __init__(self, gpus=None, argv=None):
        self.pool = gpu_pool(gpus)
        # the sweep's command line (taken where the sweep runs): what each run's commands.jsonl records
        self.argv = list(sys.argv if argv is None else argv)

    def __call__(self, cfg: DictConfig) -> dict:
        from hydra.core.hydra_config import HydraConfig

        from training.entry import train

        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        if not self.pool:
            results = train(cfg, overrides, self.argv)
            return results[0] if len(results) == 1 else results
        with claim_gpu(self.pool) as gpu:
            overrides.append(f"device=cuda:{gpu}")  # not part of a run's identity
            with open_dict(cfg):
                cfg.device = f"cuda:{gpu}"
            results = train(cfg, overrides, self.argv)
            return results[0] if len(results) == 1 else results
