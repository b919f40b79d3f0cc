"""GLUE data for the harness: task registry, loading (Hub / GLUE folder / bundled sample),
tokenisation with an on-disk cache, metrics and GLUE server submission files."""

from .features import make_collator, tokenize_glue
from .loading import GlueDataUnavailableError, load_glue, skipped_rows
from .metrics import compute_eval_metrics, compute_metrics
from .submission import (
    SUBMISSION_FILES,
    make_submission_zip,
    read_predictions,
    write_predictions,
    write_validation_predictions,
)
from .tasks import TASK_NAMES, TASKS, TaskSpec, get_task

__all__ = [
    "TaskSpec", "TASKS", "TASK_NAMES", "get_task",
    "load_glue", "skipped_rows", "GlueDataUnavailableError",
    "tokenize_glue", "make_collator",
    "compute_metrics", "compute_eval_metrics",
    "write_predictions", "write_validation_predictions", "read_predictions",
    "make_submission_zip", "SUBMISSION_FILES",
]
