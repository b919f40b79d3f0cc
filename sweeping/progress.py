"""One line per finished run: ``[done/total] <run>: <state> <score> (failures)``.

On a terminal, a tqdm bar that rewrites itself; elsewhere (logs, SLURM, CI) one plain log line per run.
Finished runs are noticed by watching their metrics.json (written last, atomically, by training), so
this works the same whatever launcher runs them: in this process, local workers or a cluster with a
shared filesystem.
"""
from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager

from .identity import status

log = logging.getLogger("sweep")


class Progress:
    def __init__(self, total: int, name: str = "sweep", stream=None, poll_s: float = 2.0):
        self.total, self.name, self.poll_s = total, name, poll_s
        self.done = self.failures = 0
        self.seen: set = set()
        self.lock = threading.Lock()
        self.stream = stream = stream if stream is not None else sys.stderr
        self.bar = None
        if getattr(stream, "isatty", lambda: False)() and total:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=name, file=stream, dynamic_ncols=True, leave=True)

    def line(self, label: str, state: str, detail: str = "") -> str:
        return (f"[{self.done}/{self.total}] {label}: {state}{detail}"
                + (f" ({self.failures} failed)" if self.failures else ""))

    def finished(self, run, state: str, metrics: dict | None = None, reason: str | None = None) -> None:
        """Count ``run`` once (a PlannedRun) with its final state."""
        with self.lock:
            if run.key in self.seen:
                return
            self.seen.add(run.key)
            self.done += 1
            self.failures += state != "done"
            detail = ""
            if state == "done" and metrics:
                metric = metrics.get("main_metric")
                value = (metrics.get("best") or {}).get(metric)
                if isinstance(value, (int, float)):
                    detail = f" {metric} {value:.4f}"
            elif reason:
                detail = f" ({str(reason).splitlines()[0][:200]})"
            text = self.line(run.label(), state, detail)
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix_str(f"failures {self.failures}" if self.failures else "")
                self.bar.write(text, file=self.stream)
            else:
                log.info(text)

    def poll(self, runs) -> None:
        for run in runs:
            if run.key not in self.seen and run.directory is not None:
                st = status(run.directory)
                if st.finished:
                    self.finished(run, st.state, st.metrics, (st.metrics or {}).get("reason"))

    @contextmanager
    def watch(self, runs):
        """Report the runs of a wave as their metrics.json appear, while the wave runs."""
        stop = threading.Event()

        def loop():
            while not stop.wait(self.poll_s):
                self.poll(runs)

        thread = threading.Thread(target=loop, name="sweep-progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
