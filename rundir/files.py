"""The writers of a run directory. Every file is written whole or not at all (a temporary file beside
it, flushed to disk, then renamed), with the permissions the user's umask gives, so that a kill at
any moment leaves either the old file or the new one and a teammate's report can read them.

Order within a run (training/run.py): ``config.yaml`` at start, one ``epochs.jsonl`` line per epoch,
``metrics.json`` last: its presence means the run is finished, done or failed.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from rundir.errors import RunDirError

CONFIG, EPOCHS, METRICS = "config.yaml", "epochs.jsonl", "metrics.json"
_TEMPORARY = ".tmp-"  # prefix of a half-written file: never read, removed at the next start
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_append(path: Path):
    """``path`` opened for appending text, never through a symlink (a link planted in a run folder
    would send our lines into someone else's file): a link there is a ``RunDirError`` naming it.
    Created with 0o666 so that the umask decides the mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RunDirError(f"{path} is a symbolic link: a run folder's files are never written through "
                              "a link; remove it") from None
        raise
    return os.fdopen(fd, "a")


# Folders inside a run folder whose files the harness writes (the trackers' own folders, wandb/ and
# tensorboard/, are theirs: W&B keeps links such as wandb/latest-run there).
_WRITTEN_FOLDERS = ("predictions", "checkpoint", "checkpoint.old", "checkpoint.new")


def refuse_links(directory: Path) -> None:
    """No symbolic link where the harness writes in a run folder (its entries, and the folders it
    writes into: a ``predictions`` link to another folder would have our files overwrite what is
    there): the first one found is a ``RunDirError`` naming it."""
    directory = Path(directory)
    entries = list(directory.iterdir())
    for name in _WRITTEN_FOLDERS:
        if (directory / name).is_dir() and not (directory / name).is_symlink():
            entries += list((directory / name).iterdir())
    for path in sorted(entries):
        if path.is_symlink():
            raise RunDirError(f"{path} is a symbolic link: a run folder's files are never written through "
                              "a link; remove it")


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` all at once: readers see the old file or the new one, never half.
    The temporary file is created new (O_EXCL, no link followed) in the real folder, then renamed over
    ``path``: a link planted at ``path`` is replaced, never written through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{_TEMPORARY}{path.name}.{secrets.token_hex(4)}"
    # os.open with 0o666 lets the umask decide the mode, as for any file the user writes
    # (mkstemp would make it 0600 and hide results from a teammate's report).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_config(directory: Path, config: dict) -> None:
    write_atomic(Path(directory) / CONFIG, yaml.safe_dump(config, sort_keys=False))


def write_metrics(directory: Path, metrics: dict) -> None:
    """The last file of a run."""
    write_json_atomic(Path(directory) / METRICS, metrics)


def append_epoch(directory: Path, record: dict) -> None:
    """One line per finished epoch; ``keep_epochs`` drops a line an interruption left beyond the
    checkpoint, so the file always holds exactly one line per epoch of the resumed run."""
    with open_append(Path(directory) / EPOCHS) as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def keep_epochs(directory: Path, epochs: int) -> list[dict]:
    """Keep the first ``epochs`` lines of epochs.jsonl (those the checkpoint covers); return them."""
    from rundir.record import read_epochs

    path = Path(directory) / EPOCHS
    records = read_epochs(directory)[:epochs]  # a torn last line (a writer killed mid-line) ends it
    if len(records) < epochs:  # the checkpoint is saved after its epoch's line: that line was whole once
        raise RunDirError(f"{path}: {len(records)} readable lines, but the checkpoint covers {epochs} "
                          "epochs; rerun=true trains the run again")
    if path.exists():
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
    return records


def clean_temporary_files(directory: Path) -> None:
    """Remove what a killed writer left half-written."""
    for path in Path(directory).glob(f"{_TEMPORARY}*"):
        path.unlink(missing_ok=True)
