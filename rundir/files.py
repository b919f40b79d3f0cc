"""The writers of a run directory. Every file is written whole or not at all (a temporary file beside
it, flushed to disk, then renamed), with the permissions the user's umask gives, so that a kill at
any moment leaves either the old file or the new one and a teammate's report can read them.

Order within a run (training/run.py): ``config.yaml`` at start, one ``epochs.jsonl`` line per epoch,
``metrics.json`` last: its presence means the run is finished, done or failed.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

CONFIG, EPOCHS, METRICS = "config.yaml", "epochs.jsonl", "metrics.json"
_TEMPORARY = ".tmp-"  # prefix of a half-written file: never read, removed at the next start


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once: readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{_TEMPORARY}{path.name}.{secrets.token_hex(4)}"
    # os.open with 0o666 lets the umask decide the mode, as for any file the user writes
    # (mkstemp would make it 0600 and hide results from a teammate's report).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
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
    with open(Path(directory) / EPOCHS, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def keep_epochs(directory: Path, epochs: int) -> list[dict]:
    """Keep the first ``epochs`` lines of epochs.jsonl (those the checkpoint covers); return them."""
    path = Path(directory) / EPOCHS
    lines = path.read_text().splitlines()[:epochs] if path.exists() else []
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not JSON ({error}); rerun=true starts the run "
                             "afresh") from None
    write_atomic(path, "".join(line + "\n" for line in lines))
    return records


def clean_temporary_files(directory: Path) -> None:
    """Remove what a killed writer left half-written."""
    for path in Path(directory).glob(f"{_TEMPORARY}*"):
        path.unlink(missing_ok=True)


def clear(directory: Path, keep: tuple[str, ...] = ()) -> None:
    """Empty a run directory (rerun=true), keeping ``keep`` (the lock file, held by this process)."""
    import shutil

    for path in Path(directory).iterdir():
        if path.name in keep:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
