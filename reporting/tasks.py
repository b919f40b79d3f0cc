"""GLUE task metadata used by the report (names follow docs/run_directory.md and methods.md)."""
from __future__ import annotations

TASK_ORDER = ["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb", "wnli", "ax"]

MAIN_METRIC = {
    "cola": "matthews", "sst2": "accuracy", "mrpc": "accuracy", "stsb": "pearson",
    "qqp": "accuracy", "mnli": "accuracy_matched", "qnli": "accuracy", "rte": "accuracy",
    "wnli": "accuracy", "ax": "matthews",
}

DISPLAY = {
    "cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
    "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "ax": "AX", "average": "Avg",
}

# Official GLUE test-set sizes (methods.md). MNLI's headline number is the matched set.
TEST_SIZE = {
    "cola": 1063, "sst2": 1821, "mrpc": 1725, "stsb": 1379, "qqp": 390965, "mnli": 9796,
    "mnli_mm": 9847, "qnli": 5463, "rte": 3000, "wnli": 146, "ax": 1104,
}

# Metrics for which the Bernoulli half-width is not defined.
NON_BERNOULLI = {"matthews", "pearson", "spearman"}

# The GLUE server's file names, and which task's run produces them.
GLUE_FILES = ["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv",
              "MNLI-mm.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"]
TASK_FILES = {
    "cola": ["CoLA.tsv"], "sst2": ["SST-2.tsv"], "mrpc": ["MRPC.tsv"], "stsb": ["STS-B.tsv"],
    "qqp": ["QQP.tsv"], "mnli": ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"], "qnli": ["QNLI.tsv"],
    "rte": ["RTE.tsv"], "wnli": ["WNLI.tsv"], "ax": ["AX.tsv"],
}

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
