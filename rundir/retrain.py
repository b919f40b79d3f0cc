"""Training a run again (``rerun=true``) without ever losing the finished one: the new run trains in
``<run>/.retrain/`` and replaces the old files only once it is finished; a kill before that leaves the
old run as it was, and a kill during the swap is completed at the next start.

The swap is a small journal: ``.retrain/.swap.json`` (written atomically, once the retrain is done)
lists the files to move. From then on the swap only ever rolls forward: the old ``metrics.json`` goes
first (so a reader meanwhile sees an unfinished run, never a mix of two), the old files the retrain
does not have go, each retrained file is renamed into place, ``metrics.json`` last.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from rundir.files import METRICS, write_json_atomic
from rundir.lock import LOCK
from rundir.record import read_run

log = logging.getLogger(__name__)
RETRAIN = ".retrain"
_SWAP = ".swap.json"
# What every invocation of a run adds to (the lock, the command history, the log): kept across a retrain.
KEPT = (LOCK, "commands.jsonl", "train.log", RETRAIN)


def has_run_files(directory: Path) -> bool:
    """Whether ``directory`` holds anything of a run (besides the lock, the history and the log)."""
    directory = Path(directory)
    return directory.is_dir() and any(p.name not in KEPT for p in directory.iterdir())


def start_retrain(directory: Path) -> Path:
    """A fresh, empty ``<run>/.retrain/`` to train the run again in (an earlier unfinished one goes)."""
    folder = Path(directory) / RETRAIN
    _remove(folder)
    folder.mkdir(parents=True)
    return folder


def is_retrain(directory: Path) -> bool:
    return Path(directory).name == RETRAIN


def finish_retrain(directory: Path) -> bool:
    """Called once the retrain in ``directory`` (a ``.retrain`` folder) has written its metrics.json:
    swap it in, unless it failed where the run it would replace is done (that run stays, and the
    failed retrain is left in ``.retrain/`` for the record until the next command). True if swapped."""
    folder = Path(directory)
    run = folder.parent
    new, old = read_run(folder), read_run(run)
    if new.status == "failed" and old.status == "done":
        log.warning("%s: the retrain failed (%s); the finished run stays as it was", run, new.reason)
        return False
    names = sorted(p.name for p in folder.iterdir() if p.name not in (METRICS, _SWAP))
    write_json_atomic(folder / _SWAP, {"files": names})
    _roll_forward(run)
    return True


def recover(directory: Path) -> None:
    """At a run's start (its lock held): a swap a kill interrupted is completed; any other
    ``.retrain/`` (a retrain that never finished, or a failed one) is removed."""
    folder = Path(directory) / RETRAIN
    if (folder / _SWAP).exists():
        log.warning("%s: completing the swap of its retrain that an interruption stopped", directory)
        _roll_forward(Path(directory))
    elif folder.exists():
        _remove(folder)


def _roll_forward(run: Path) -> None:
    folder = run / RETRAIN
    if not (folder / METRICS).exists():  # the swap had ended: only the emptied folder was left
        _remove(folder)
        return
    names = json.loads((folder / _SWAP).read_text())["files"]
    (run / METRICS).unlink(missing_ok=True)  # first: from here on the run reads unfinished, never mixed
    for path in run.iterdir():
        if path.name not in KEPT and path.name not in names:
            _remove(path)
    for name in names:
        if (folder / name).exists():
            if (folder / name).is_dir() or (run / name).is_dir():  # a file is replaced in one step
                _remove(run / name)
            os.replace(folder / name, run / name)
    if (folder / METRICS).exists():
        os.replace(folder / METRICS, run / METRICS)  # last: the run is finished again
    _remove(folder)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
