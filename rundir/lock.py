"""One process trains a run at a time: an exclusive ``flock`` on ``<run>/.lock``.

The operating system releases the lock when its holder dies (kill -9 included), so a crash never
leaves a run locked. A second process waits for the lock, saying so, and then reads the run again:
by then it is usually finished and is skipped. The file is opened without following symlinks and
never truncated, so a planted link cannot make us write elsewhere.

A run that fails before its first epoch ends leaves nothing (``lock_runs``): the folder it created
goes, lock included, so no stub of ``.lock`` and ``commands.jsonl`` matches a glob of finished runs. A
process that was waiting on the lock of a removed folder finds its file gone and locks the new one.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

from rundir.errors import RunDirError

log = logging.getLogger(__name__)
LOCK = ".lock"


class RunLock:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / LOCK
        self._fd: int | None = None

    def acquire(self, poll_s: float = 2.0) -> None:
        said = False
        while True:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise RunDirError(f"{self.path} is a symbolic link: a run folder's files are never "
                                      "written through a link; remove it") from None
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(fd, self.path):
                    break
                os.close(fd)  # its holder removed the folder (a failed start): lock the new one
                continue
            except BlockingIOError:
                if not said:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    log.warning("%s is being trained by another process (%s): waiting for it", self.directory,
                                holder)
                    said = True
                os.close(fd)  # opened again after the wait: the holder may have removed the folder
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)
        self._fd = fd
        if said:
            log.info("%s: the other process is done with it", self.directory)

    def remove_if_unstarted(self, existed: bool) -> None:
        """A failed start leaves nothing: the folder goes (with its empty parents, up to the task's
        level) if this process created it and no epoch of it ended (no epochs.jsonl line, no
        checkpoint, no metrics.json). Called with the lock held, so nobody is training it."""
        if existed or not self.directory.is_dir():
            return
        epochs = self.directory / "epochs.jsonl"
        if ((epochs.exists() and epochs.stat().st_size) or (self.directory / "metrics.json").exists()
                or any(self.directory.glob("checkpoint*"))):
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        parent = self.directory.parent
        for _ in range(3):  # <setting>, <method>, <task>: see rundir/identity.py
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

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


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def lock_runs(directories: list[Path]) -> Iterator[list[RunLock]]:
    """Lock several runs (a pack), always in path order so that two packs sharing runs cannot
    deadlock; released in reverse order on the way out, whatever happens. On an error, each folder
    this created whose run never finished an epoch is removed (``RunLock.remove_if_unstarted``)."""
    unique = sorted(set(map(Path, directories)), key=str)
    existed = {d: d.exists() for d in unique}
    with contextlib.ExitStack() as stack:
        locks = {d: stack.enter_context(RunLock(d)) for d in unique}
        try:
            yield [locks[Path(d)] for d in directories]
        except BaseException:
            for directory, lock in locks.items():
                lock.remove_if_unstarted(existed[directory])
            raise
