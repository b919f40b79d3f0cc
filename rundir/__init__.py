"""The run directory: the one contract between training, sweeping and reporting (docs/run_directory.md).

Torch-free on purpose: sweep.py and report.py read runs without importing the training stack.
- ``identity``: where a run lives and what makes it the same run (setting name, config hash).
- ``files``: the writers (atomic, with the user's umask; ``metrics.json`` last).
- ``record``: the one reader, returning a typed ``RunRecord``.
- ``lock``: one process trains a run at a time.
- ``selection``: the one rule for "the best mean setting", shared by the sweep and the report.
"""
from rundir.files import (CONFIG, EPOCHS, METRICS, append_epoch, clean_temporary_files, keep_epochs,
                          write_config, write_json_atomic, write_metrics)
from rundir.identity import config_hash, differences, identity, run_dir, setting_name
from rundir.lock import RunLock, lock_runs
from rundir.record import RunRecord, find_runs, read_epochs, read_run
from rundir.selection import best_mean

__all__ = [
    "CONFIG", "EPOCHS", "METRICS", "RunLock", "RunRecord", "append_epoch", "best_mean",
    "clean_temporary_files", "config_hash", "differences", "find_runs", "identity", "keep_epochs",
    "lock_runs", "read_epochs", "read_run", "run_dir", "setting_name", "write_config", "write_json_atomic",
    "write_metrics",
]
