"""The GLUE task registry.

Tasks are keyed by their Hugging Face Hub config name (``nyu-mll/glue``):
``cola sst2 mrpc qqp stsb mnli qnli rte wnli ax``.  Every other module of the harness looks
tasks up here (columns, labels, split names, metric keys, submission file names).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TaskSpec", "TASKS", "TASK_NAMES", "get_task"]


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

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("cola", ("sentence",), 2, ("unacceptable", "acceptable"), False, "CoLA",
                 _VAL, (("test", "CoLA"),), ("matthews",), "matthews"),
        TaskSpec("sst2", ("sentence",), 2, ("negative", "positive"), False, "SST-2",
                 _VAL, (("test", "SST-2"),), ("accuracy",), "accuracy"),
        TaskSpec("mrpc", ("sentence1", "sentence2"), 2, ("not_equivalent", "equivalent"), False,
                 "MRPC", _VAL, (("test", "MRPC"),), ("accuracy", "f1"), "accuracy"),
        TaskSpec("qqp", ("question1", "question2"), 2, ("not_duplicate", "duplicate"), False,
                 "QQP", _VAL, (("test", "QQP"),), ("accuracy", "f1"), "accuracy"),
        TaskSpec("stsb", ("sentence1", "sentence2"), 1, (), True, "STS-B",
                 _VAL, (("test", "STS-B"),), ("pearson", "spearman"), "pearson"),
        TaskSpec("mnli", ("premise", "hypothesis"), 3, _NLI3, False, "MNLI",
                 (("validation_matched", "_matched"), ("validation_mismatched", "_mismatched")),
                 (("test_matched", "MNLI-m"), ("test_mismatched", "MNLI-mm")),
                 ("accuracy",), "accuracy_matched", _NLI3),
        TaskSpec("qnli", ("question", "sentence"), 2, _NLI2, False, "QNLI",
                 _VAL, (("test", "QNLI"),), ("accuracy",), "accuracy", _NLI2),
        TaskSpec("rte", ("sentence1", "sentence2"), 2, _NLI2, False, "RTE",
                 _VAL, (("test", "RTE"),), ("accuracy",), "accuracy", _NLI2),
        # WNLI's ids are flipped w.r.t. RTE: 0 not_entailment, 1 entailment (server wants 0/1).
        TaskSpec("wnli", ("sentence1", "sentence2"), 2, ("not_entailment", "entailment"), False,
                 "WNLI", _VAL, (("test", "WNLI"),), ("accuracy",), "accuracy"),
        # AX (diagnostic): test only, predicted by an MNLI model; no validation split.
        TaskSpec("ax", ("premise", "hypothesis"), 3, _NLI3, False, "diagnostic",
                 (), (("test", "AX"),), ("accuracy",), "accuracy", _NLI3),
    ]
}

TASK_NAMES: tuple[str, ...] = tuple(TASKS)

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
