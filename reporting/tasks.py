"""GLUE task metadata used by the report, derived from the task registry (glue/tasks.py), which
holds every fact of a task; names follow docs/run_directory.md and methods.md."""
from __future__ import annotations

from glue import SERVER_FILES, SUBMISSION_FILES, TASKS

# The order of the papers' tables (a presentation choice, not a GLUE fact).
TASK_ORDER = ["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb", "wnli", "ax"]

# The metric a task is reported with (AX: Matthews' correlation, as the GLUE server scores it).
MAIN_METRIC = {name: spec.main_metric for name, spec in TASKS.items()}

DISPLAY = {name: spec.display_name for name, spec in TASKS.items()} | {"average": "Avg"}

# Metrics for which the Bernoulli half-width is not defined.
NON_BERNOULLI = {"matthews", "pearson", "spearman"}

# The GLUE server's file names, and which task's run produces them (the MNLI run predicts AX too).
GLUE_FILES = list(SUBMISSION_FILES)
TASK_FILES = {name: [f.name for t in (name, *spec.predicts) for f in TASKS[t].server_files]
              for name, spec in TASKS.items()}

_ALIASES = {
    "sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli_m": "mnli", "mnli-matched": "mnli",
    "mnli-mm": "mnli_mm", "mnli-mismatched": "mnli_mm", "avg": "average", "glue": "average",
}


def normalise_task(name: str) -> str:
    """'SST-2', 'MNLI-m', 'sts-b' -> Hub config names ('sst2', 'mnli', 'stsb'); 'MNLI-mm' -> 'mnli_mm'."""
    key = str(name).strip().lower()
    return _ALIASES.get(key, key.replace("-", ""))


# Official GLUE test-set sizes, keyed as the report names test scores (MNLI's headline number is
# the matched set, 'mnli'; the mismatched one is 'mnli_mm').
TEST_SIZE = {normalise_task(name.removesuffix(".tsv")): f.rows for name, f in SERVER_FILES.items()}


# MNLI's validation sets (GLUE: validation_matched, validation_mismatched): the weights of MNLI's
# overall accuracy, the one number the DeLoRA report prints for MNLI ("mnli_all" in a preset).
MNLI_VALIDATION = {"matched": 9815, "mismatched": 9832}


def mnli_overall(matched: float, mismatched: float) -> float:
    """Accuracy over both MNLI validation sets together: their accuracies weighted by their sizes."""
    m, mm = MNLI_VALIDATION["matched"], MNLI_VALIDATION["mismatched"]
    return (m * matched + mm * mismatched) / (m + mm)


def main_metric(task: str) -> str:
    return MAIN_METRIC.get(task, "accuracy")


def display(task: str) -> str:
    return DISPLAY.get(task, task)
