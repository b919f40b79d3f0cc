"""GLUE task metadata used by the report (names follow docs/run_directory.md and methods.md)."""
from __future__ import annotations

from glue import SUBMISSION_FILES, TASKS

TASK_ORDER = ["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb", "wnli", "ax"]

# The GLUE server scores the diagnostic set (AX) with Matthews' correlation.
MAIN_METRIC = {name: spec.main_metric for name, spec in TASKS.items()} | {"ax": "matthews"}

DISPLAY = {name: spec.glue_dir_name for name, spec in TASKS.items()} | {"ax": "AX", "average": "Avg"}

# Official GLUE test-set sizes (methods.md). MNLI's headline number is the matched set.
TEST_SIZE = {
    "cola": 1063, "sst2": 1821, "mrpc": 1725, "stsb": 1379, "qqp": 390965, "mnli": 9796,
    "mnli_mm": 9847, "qnli": 5463, "rte": 3000, "wnli": 146, "ax": 1104,
}

# Metrics for which the Bernoulli half-width is not defined.
NON_BERNOULLI = {"matthews", "pearson", "spearman"}

# The GLUE server's file names, and which task's run produces them (the MNLI run predicts AX too).
GLUE_FILES = list(SUBMISSION_FILES)
TASK_FILES = {name: [f"{stem}.tsv" for _, stem in spec.test_splits] for name, spec in TASKS.items()}
TASK_FILES["mnli"].append("AX.tsv")

_ALIASES = {
    "sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli_m": "mnli", "mnli-matched": "mnli",
    "mnli-mm": "mnli_mm", "mnli-mismatched": "mnli_mm", "avg": "average", "glue": "average",
}


def normalise_task(name: str) -> str:
    """'SST-2', 'MNLI-m', 'sts-b' -> Hub config names ('sst2', 'mnli', 'stsb'); 'MNLI-mm' -> 'mnli_mm'."""
    key = str(name).strip().lower()
    return _ALIASES.get(key, key.replace("-", ""))


def main_metric(task: str) -> str:
    return MAIN_METRIC.get(task, "accuracy")


def display(task: str) -> str:
    return DISPLAY.get(task, task)
