"""The run directory: the one contract between training, sweeping and reporting (docs/run_directory.md).

Torch-free on purpose: sweep.py and report.py read runs without importing the training stack.
- ``identity``: where a run lives and what makes it the same run (setting name, config hash).
- ``files``: the writers (atomic, with the user's umask; ``metrics.json`` last).
- ``record``: the one reader, returning a typed ``RunRecord``.
- ``lock``: one process trains a run at a time; a failed start leaves no folder.
- ``retrain``: ``rerun=true`` trains beside a run's files and swaps them in once finished.
- ``errors``: ``RunDirError``, a run folder's file in the way (damaged, a link, another config).
- ``selection``: the one rule for "the best mean setting", shared by the sweep and the report.
"""
from rundir.errors import RunDirError
from rundir.files import (CONFIG, EPOCHS, METRICS, append_epoch, clean_temporary_files, keep_epochs,
                          open_append, refuse_links, write_atomic, write_config, write_json_atomic,
                          write_metrics)
from rundir.identity import config_hash, differences, identity, run_dir, setting_name
from rundir.lock import RunLock, lock_runs
from rundir.record import FINISHED, RunRecord, find_runs, is_finished, read_epochs, read_run
from rundir.retrain import RETRAIN, finish_retrain, has_run_files, is_retrain, recover, start_retrain
from rundir.selection import best_mean

__all__ = [
    "CONFIG", "EPOCHS", "FINISHED", "METRICS", "RETRAIN", "RunDirError", "RunLock", "RunRecord",
    "append_epoch", "best_mean", "clean_temporary_files", "config_hash", "differences", "find_runs",
    "finish_retrain", "has_run_files", "identity", "is_finished", "is_retrain", "keep_epochs", "lock_runs",
    "open_append", "read_epochs", "read_run", "recover", "refuse_links", "run_dir", "setting_name",
    "start_retrain", "write_atomic", "write_config", "write_json_atomic", "write_metrics",
]
