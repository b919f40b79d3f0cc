"""The GLUE submission zip from the chosen runs' test predictions (``predictions/<GLUE file>.tsv``)."""
from __future__ import annotations

from pathlib import Path

from glue import make_submission_zip

from .tasks import GLUE_FILES, TASK_FILES


def collect_prediction_files(run_by_task: dict[str, str]) -> dict[str, Path]:
    """GLUE file name -> path, from each task's chosen run; the AX task's run wins AX.tsv over MNLI's."""
    files: dict[str, Path] = {}
    for task in sorted(run_by_task, key=lambda t: t == "ax"):
        pred = Path(run_by_task[task]) / "predictions"
        for name in TASK_FILES.get(task, []):
            if (pred / name).is_file():
                files[name] = pred / name
    return files


def write_submission(zip_path: Path, files: dict[str, Path]) -> list[str]:
    """Write the zip (flat, GLUE names); return the GLUE files still missing for a full submission."""
    make_submission_zip([files[name] for name in GLUE_FILES if name in files], zip_path)
    return [n for n in GLUE_FILES if n not in files]
