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
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def record_command(directory: Path, invocation: dict) -> None:
    """Append `invocation` to the directory's commands.jsonl, unless it is there already."""
    path = Path(directory) / "commands.jsonl"
    if path.exists() and any(json.loads(line).get("id") == invocation["id"]
                             for line in path.read_text().splitlines() if line.strip()):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(invocation) + "\n")


class RunLogHandler(logging.Handler):
    """Appends each log record to `<directory>/train.log`, opening the file each time, and records
    the command in the same directory with the first line: the files come back if a rerun empties
    the directory, and a run that never starts (a usage error) leaves no directory behind."""

    def __init__(self, directory: Path, invocation: dict):
        super().__init__(logging.INFO)
        self.directory, self.invocation = Path(directory), invocation
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not (self.directory / "commands.jsonl").exists():
                record_command(self.directory, self.invocation)
            with open(self.directory / "train.log", "a") as f:
                f.write(self.format(record) + "\n")
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
        if directory.exists():  # a run resumed: this command continues it
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
            if directory.exists():
                record_command(directory, invocation)
