"""GLUE data for the harness: task registry, loading (Hub / GLUE folder / bundled sample),
tokenisation with an on-disk cache, metrics and GLUE server submission files."""

from .features import make_collator, tokenize_glue
from .loading import GlueDataUnavailableError, SplitRecord, load_glue, skipped_rows, split_records
from .metrics import compute_eval_metrics, compute_metrics
from .submission import (
    SUBMISSION_FILES,
    SubmissionError,
    check_submission,
    make_submission_zip,
    read_predictions,
    write_predictions,
    write_validation_predictions,
)
from .tasks import SERVER_FILES, TASK_NAMES, TASKS, ServerFile, TaskSpec, get_task

__all__ = [
    "TaskSpec", "TASKS", "TASK_NAMES", "get_task", "ServerFile", "SERVER_FILES",
    "load_glue", "skipped_rows", "split_records", "SplitRecord", "GlueDataUnavailableError",
    "tokenize_glue", "make_collator",
    "compute_metrics", "compute_eval_metrics",
    "write_predictions", "write_validation_predictions", "read_predictions",
    "make_submission_zip", "check_submission", "SubmissionError", "SUBMISSION_FILES",
]
