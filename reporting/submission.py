"""The GLUE submission zip from the chosen runs' test predictions (``predictions/<GLUE file>.tsv``)."""
from __future__ import annotations

from pathlib import Path

from glue import SubmissionError, check_submission
from glue.submission import FileCheck, write_zip

from .tasks import GLUE_FILES, TASK_FILES

__all__ = ["SubmissionError", "collect_prediction_files", "write_submission"]


def collect_prediction_files(run_by_task: dict[str, str]) -> dict[str, Path]:
    """GLUE file name -> path, from each task's chosen run; the AX task's run wins AX.tsv over MNLI's."""
    files: dict[str, Path] = {}
    for task in sorted(run_by_task, key=lambda t: t == "ax"):
        pred = Path(run_by_task[task]) / "predictions"
        for name in TASK_FILES.get(task, []):
            if (pred / name).is_file():
                files[name] = pred / name
    return files


def write_submission(zip_path: Path, files: dict[str, Path], partial: bool = False) -> list[FileCheck]:
    """Write the zip (flat, GLUE names) if the GLUE server would take it; return the files it would
    reject (missing, or not one row per official test row), written anyway only with ``partial``.
    Raises glue.SubmissionError, naming each such file, when refused."""
    paths = [files[name] for name in GLUE_FILES if name in files]
    rejected = [c for c in check_submission(paths) if not c.ok]
    if rejected and not partial:
        raise SubmissionError(rejected)
    write_zip(paths, zip_path)
    return rejected
