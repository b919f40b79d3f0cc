"""One process trains a run at a time: an exclusive ``flock`` on ``<run>/.lock``.

The operating system releases the lock when its holder dies (kill -9 included), so a crash never
leaves a run locked. A second process waits for the lock, saying so, and then reads the run again:
by then it is usually finished and is skipped. The file is opened without following symlinks and
never truncated, so a planted link cannot make us write elsewhere.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
LOCK = ".lock"


class RunLock:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / LOCK
        self._fd: int | None = None

    def acquire(self, poll_s: float = 2.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    log.warning("%s is being trained by another process (%s): waiting for it", self.directory,
                                holder)
                    said = True
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)
        self._fd = fd
        if said:
            log.info("%s: the other process is done with it", self.directory)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def lock_runs(directories: list[Path]) -> Iterator[list[RunLock]]:
    """Lock several runs (a pack), always in path order so that two packs sharing runs cannot
    deadlock; released in reverse order on the way out, whatever happens."""
    with contextlib.ExitStack() as stack:
        locks = {d: stack.enter_context(RunLock(d)) for d in sorted(set(map(Path, directories)), key=str)}
        yield [locks[Path(d)] for d in directories]
