"""The GLUE task registry."""

from __future__ import annotations

import dataclasses

import pytest

from glue.tasks import TASK_NAMES, TASKS, TaskSpec, get_task


def test_names_and_lookup():
    assert TASK_NAMES == ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli",
                          "ax")
    for spelling, name in [("SST-2", "sst2"), ("sst-2", "sst2"), ("sts-b", "stsb"),
                           ("STS-B", "stsb"), ("CoLA", "cola"), ("MNLI", "mnli"), ("Rte", "rte"),
                           ("AX", "ax"), ("diagnostic", "ax"), (" qqp ", "qqp")]:
        assert get_task(spelling).name == name
    assert get_task(TASKS["rte"]) is TASKS["rte"]


def test_unknown_task_lists_known():
    with pytest.raises(ValueError) as e:
        get_task("squad")
    assert "squad" in str(e.value)
    for name in TASK_NAMES:
        assert name in str(e.value)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASKS["rte"].num_labels = 3  # type: ignore[misc]
    assert isinstance(TASKS["rte"], TaskSpec)


def test_specs():
    s = get_task("stsb")
    assert s.is_regression and s.num_labels == 1 and s.main_metric == "pearson"
    assert s.metric_keys == ("pearson", "spearman")
    m = get_task("mnli")
    assert m.eval_splits == (("validation_matched", "_matched"),
                             ("validation_mismatched", "_mismatched"))
    assert m.test_splits == (("test_matched", "MNLI-m"), ("test_mismatched", "MNLI-mm"))
    assert m.main_metric == "accuracy_matched"
    assert m.metric_keys == ("accuracy_matched", "accuracy_mismatched")
    assert get_task("cola").main_metric == "matthews"
    assert get_task("mrpc").metrics == ("accuracy", "f1")
    assert get_task("ax").glue_dir_name == "diagnostic" and get_task("ax").eval_splits == ()
    assert get_task("ax").test_splits == (("test", "AX"),)
    assert get_task("rte").test_splits == (("test", "RTE"),)
    assert get_task("wnli").label_names == ("not_entailment", "entailment")
    for t in TASKS.values():
        assert len(t.text_fields) in (1, 2)
        assert t.main_metric in t.metric_keys or t.name == "ax"
        assert t.is_regression or len(t.label_names) == t.num_labels
