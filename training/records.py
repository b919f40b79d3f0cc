"""What made a run directory: each command line that ran it (`commands.jsonl`, one JSON line per
invocation: time, argv, Hydra overrides, working directory, host) and its log (`train.log`, the lines
the terminal shows, with times). train.py wraps its runs in `run_records`."""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import uuid
import contextlib
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import rundir

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def recorded_ids(path: Path) -> set[str]:
    """The invocation ids in a commands.jsonl; a torn line (a writer killed mid-line) is skipped, as
    ``rundir.read_epochs`` skips one in epochs.jsonl."""
    ids = set()
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            ids.add(record.get("id"))
    return ids


def record_command(directory: Path, invocation: dict) -> None:
    """Append `invocation` to the directory's commands.jsonl (never through a link), unless it is
    there already. The directory must exist: a command never creates a run folder."""
    path = Path(directory) / "commands.jsonl"
    if invocation["id"] in recorded_ids(path):
        return
    torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with rundir.open_append(path) as f:
        f.write(("\n" if torn else "") + json.dumps(invocation) + "\n")  # after a torn line: a new one


class RunLogHandler(logging.Handler):
    """Appends each log record to `<directory>/train.log` (opening the file each time, never through a
    link) and records the command in the same directory with the first line. Until the run's folder
    exists (its lock creates it once every check has passed) the lines wait in memory, so that a run
    that never starts (a usage error) leaves no folder behind."""

    def __init__(self, directory: Path, invocation: dict):
        super().__init__(logging.INFO)
        self.directory, self.invocation = Path(directory), invocation
        self.waiting: list[str] = []
        self.refused = False  # a link in the run folder: the run itself reports it, one line
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if self.refused:
            return
        try:
            self.waiting.append(self.format(record))
            if not self.directory.is_dir():
                return
            record_command(self.directory, self.invocation)
            with rundir.open_append(self.directory / "train.log") as f:
                f.write("".join(line + "\n" for line in self.waiting))
            self.waiting = []
        except rundir.RunDirError:
            self.refused = True
        except Exception:  # logging must never end a run
            self.handleError(record)


@contextmanager
def run_records(directories, argv: list[str], overrides: list[str]):
    """While the runs in `directories` train, log to each one's train.log; each directory that exists
    (at the start or by the end) records this command once in its commands.jsonl."""
    invocation = {"id": uuid.uuid4().hex, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "argv": [sys.executable, *argv], "overrides": list(overrides), "cwd": os.getcwd(),
                  "host": socket.gethostname()}
    directories = [Path(d) for d in directories]
    for directory in directories:
        if directory.is_dir():  # a run resumed: this command continues it
            with contextlib.suppress(rundir.RunDirError):  # a planted link: the run names it
                record_command(directory, invocation)
    handlers = [RunLogHandler(d, invocation) for d in directories]
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        for directory in directories:
            if directory.is_dir():
                with contextlib.suppress(rundir.RunDirError):
                    record_command(directory, invocation)
