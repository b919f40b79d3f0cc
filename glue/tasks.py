"""The GLUE task registry: every fact of a GLUE task, in one place.

Tasks are keyed by their Hugging Face Hub config name (``nyu-mll/glue``):
``cola sst2 mrpc qqp stsb mnli qnli rte wnli ax``.  Every other module of the harness (loading,
metrics, submission files, the sweep's cost estimate, the report) reads tasks from here: columns,
labels, split names and sizes, metrics, display names, GLUE server file names and test-set sizes.
Sizes are the Hub's (``nyu-mll/glue``): the official GLUE sizes, the test sets the GLUE server scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["TaskSpec", "ServerFile", "TASKS", "TASK_NAMES", "SERVER_FILES", "get_task"]


class ServerFile(NamedTuple):
    """One file of a GLUE server submission."""

    name: str  # "MNLI-m.tsv"
    task: str  # "mnli"
    split: str  # the Hub test split it predicts: "test_matched"
    rows: int  # rows the server expects: the official test-set size (9796)


@dataclass(frozen=True)
class TaskSpec:
    """Everything the harness needs to know about one GLUE task.

    Attributes:
        name: Hub config name (``"rte"``).
        text_fields: the Hub's text column names, 1 (single sentence) or 2 (pair).
        num_labels: number of model outputs (1 for STS-B, a regression).
        label_names: the Hub's ClassLabel names, index = label id (empty for STS-B).
        is_regression: True for STS-B (float labels in [0, 5]).
        glue_dir_name: folder of the original GLUE download (``"SST-2"``; ``"diagnostic"`` for AX).
        eval_splits: ``(hub split, metric-key suffix)`` of the validation splits
            (MNLI: ``validation_matched`` -> ``_matched``); empty for AX.
        test_splits: ``(hub split, submission file stem)`` (``("test_matched", "MNLI-m")``).
        metrics: metric names computed for one split (``("accuracy", "f1")``).
        main_metric: the key (with suffix) used for model selection (``"accuracy_matched"``).
        submission_labels: label strings the GLUE server expects, index = label id; empty
            means the label id itself is written (``0``/``1``) or, for STS-B, a float.
        display_name: the name tables print (``"SST-2"``, ``"AX"``).
        sizes: ``(hub split, rows)`` of every split, in :attr:`splits` order: the official sizes.
        predicts: other tasks whose test sets this task's model predicts (MNLI: ``("ax",)``).
    """

    name: str
    text_fields: tuple[str, ...]
    num_labels: int
    label_names: tuple[str, ...]
    is_regression: bool
    glue_dir_name: str
    eval_splits: tuple[tuple[str, str], ...]
    test_splits: tuple[tuple[str, str], ...]
    metrics: tuple[str, ...]
    main_metric: str
    submission_labels: tuple[str, ...] = ()
    display_name: str = ""
    sizes: tuple[tuple[str, int], ...] = ()
    predicts: tuple[str, ...] = ()

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2

    @property
    def splits(self) -> tuple[str, ...]:
        """All Hub split names of the task, in the Hub's order."""
        train = () if self.name == "ax" else ("train",)
        return train + tuple(s for s, _ in self.eval_splits) + tuple(s for s, _ in self.test_splits)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """All validation metric keys with suffixes (MNLI: ``accuracy_matched``, ...)."""
        return tuple(m + suffix for _, suffix in self.eval_splits for m in self.metrics)

    def size(self, split: str) -> int:
        """Official row count of a Hub split (``TASKS["qqp"].size("test")`` = 390965)."""
        for s, n in self.sizes:
            if s == split:
                return n
        raise ValueError(f"{split!r} is not a split of {self.name}; expected one of {list(self.splits)}")

    @property
    def server_files(self) -> tuple[ServerFile, ...]:
        """The GLUE server files of the task's own test splits (MNLI: MNLI-m.tsv, MNLI-mm.tsv)."""
        return tuple(ServerFile(stem + ".tsv", self.name, split, self.size(split))
                     for split, stem in self.test_splits)

    def eval_suffix(self, split: str) -> str:
        for s, suffix in self.eval_splits:
            if s == split:
                return suffix
        raise ValueError(
            f"{split!r} is not a validation split of {self.name}; "
            f"expected one of {[s for s, _ in self.eval_splits]}"
        )

    def submission_stem(self, split: str) -> str:
        for s, stem in self.test_splits:
            if s == split:
                return stem
        raise ValueError(
            f"{split!r} is not a test split of {self.name}; "
            f"expected one of {[s for s, _ in self.test_splits]}"
        )


_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")
_VAL = (("validation", ""),)


def _sizes(train: int, validation: int, test: int) -> tuple[tuple[str, int], ...]:
    return (("train", train), ("validation", validation), ("test", test))


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("cola", ("sentence",), 2, ("unacceptable", "acceptable"), False, "CoLA",
                 _VAL, (("test", "CoLA"),), ("matthews",), "matthews",
                 display_name="CoLA", sizes=_sizes(8_551, 1_043, 1_063)),
        TaskSpec("sst2", ("sentence",), 2, ("negative", "positive"), False, "SST-2",
                 _VAL, (("test", "SST-2"),), ("accuracy",), "accuracy",
                 display_name="SST-2", sizes=_sizes(67_349, 872, 1_821)),
        TaskSpec("mrpc", ("sentence1", "sentence2"), 2, ("not_equivalent", "equivalent"), False,
                 "MRPC", _VAL, (("test", "MRPC"),), ("accuracy", "f1"), "accuracy",
                 display_name="MRPC", sizes=_sizes(3_668, 408, 1_725)),
        TaskSpec("qqp", ("question1", "question2"), 2, ("not_duplicate", "duplicate"), False,
                 "QQP", _VAL, (("test", "QQP"),), ("accuracy", "f1"), "accuracy",
                 display_name="QQP", sizes=_sizes(363_846, 40_430, 390_965)),
        TaskSpec("stsb", ("sentence1", "sentence2"), 1, (), True, "STS-B",
                 _VAL, (("test", "STS-B"),), ("pearson", "spearman"), "pearson",
                 display_name="STS-B", sizes=_sizes(5_749, 1_500, 1_379)),
        TaskSpec("mnli", ("premise", "hypothesis"), 3, _NLI3, False, "MNLI",
                 (("validation_matched", "_matched"), ("validation_mismatched", "_mismatched")),
                 (("test_matched", "MNLI-m"), ("test_mismatched", "MNLI-mm")),
                 ("accuracy",), "accuracy_matched", _NLI3,
                 display_name="MNLI",
                 sizes=(("train", 392_702), ("validation_matched", 9_815),
                        ("validation_mismatched", 9_832), ("test_matched", 9_796),
                        ("test_mismatched", 9_847)),
                 predicts=("ax",)),
        TaskSpec("qnli", ("question", "sentence"), 2, _NLI2, False, "QNLI",
                 _VAL, (("test", "QNLI"),), ("accuracy",), "accuracy", _NLI2,
                 display_name="QNLI", sizes=_sizes(104_743, 5_463, 5_463)),
        TaskSpec("rte", ("sentence1", "sentence2"), 2, _NLI2, False, "RTE",
                 _VAL, (("test", "RTE"),), ("accuracy",), "accuracy", _NLI2,
                 display_name="RTE", sizes=_sizes(2_490, 277, 3_000)),
        # WNLI's ids are flipped w.r.t. RTE: 0 not_entailment, 1 entailment (server wants 0/1).
        TaskSpec("wnli", ("sentence1", "sentence2"), 2, ("not_entailment", "entailment"), False,
                 "WNLI", _VAL, (("test", "WNLI"),), ("accuracy",), "accuracy",
                 display_name="WNLI", sizes=_sizes(635, 71, 146)),
        # AX (diagnostic): test only, predicted by an MNLI model; no validation split.  The GLUE
        # server scores it with Matthews' correlation (R3 over the three classes).
        TaskSpec("ax", ("premise", "hypothesis"), 3, _NLI3, False, "diagnostic",
                 (), (("test", "AX"),), ("matthews",), "matthews", _NLI3,
                 display_name="AX", sizes=(("test", 1_104),)),
    ]
}

TASK_NAMES: tuple[str, ...] = tuple(TASKS)

#: the 11 files of a GLUE server submission, by file name
SERVER_FILES: dict[str, ServerFile] = {f.name: f for t in TASKS.values() for f in t.server_files}

_ALIASES: dict[str, str] = {}
for _t in TASKS.values():
    for _alias in (_t.name, _t.glue_dir_name, _t.glue_dir_name.replace("-", "")):
        _ALIASES[_alias.lower()] = _t.name
_ALIASES.update({"sts-b": "stsb", "sst-2": "sst2", "diagnostic": "ax", "mnli-m": "mnli",
                 "mnli-mm": "mnli", "glue/ax": "ax"})


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Look a task up by Hub config name, case-insensitively, or by its GLUE folder spelling
    (``SST-2``, ``sts-b``, ``CoLA``).  Unknown names raise ValueError listing the known tasks."""
    if isinstance(name, TaskSpec):
        return name
    key = str(name).strip().lower().replace("_", "-")
    if key in _ALIASES:
        return TASKS[_ALIASES[key]]
    if key.replace("-", "") in _ALIASES:
        return TASKS[_ALIASES[key.replace("-", "")]]
    raise ValueError(f"unknown GLUE task {name!r}; known tasks: {', '.join(TASK_NAMES)}")
