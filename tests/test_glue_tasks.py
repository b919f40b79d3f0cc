"""The GLUE task registry."""

from __future__ import annotations

import dataclasses

import pytest

from glue.tasks import SERVER_FILES, TASK_NAMES, TASKS, TaskSpec, get_task


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


# The official GLUE sizes (the Hub's nyu-mll/glue = the GLUE server's test sets), written out
# independently of glue/tasks.py: (train, validation splits, test splits).
OFFICIAL_SIZES = {
    "cola": {"train": 8551, "validation": 1043, "test": 1063},
    "sst2": {"train": 67349, "validation": 872, "test": 1821},
    "mrpc": {"train": 3668, "validation": 408, "test": 1725},
    "qqp": {"train": 363846, "validation": 40430, "test": 390965},
    "stsb": {"train": 5749, "validation": 1500, "test": 1379},
    "mnli": {"train": 392702, "validation_matched": 9815, "validation_mismatched": 9832,
             "test_matched": 9796, "test_mismatched": 9847},
    "qnli": {"train": 104743, "validation": 5463, "test": 5463},
    "rte": {"train": 2490, "validation": 277, "test": 3000},
    "wnli": {"train": 635, "validation": 71, "test": 146},
    "ax": {"test": 1104},
}
DISPLAY_NAMES = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B",
                 "mnli": "MNLI", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "ax": "AX"}


def test_sizes_and_names_are_the_official_ones():
    for name, spec in TASKS.items():
        assert dict(spec.sizes) == OFFICIAL_SIZES[name], name
        assert tuple(dict(spec.sizes)) == spec.splits, name  # every split, in order
        assert spec.display_name == DISPLAY_NAMES[name]
    assert get_task("qqp").size("test") == 390965
    with pytest.raises(ValueError, match="not a split of ax"):
        get_task("ax").size("train")
    assert get_task("mnli").predicts == ("ax",)
    assert all(t.predicts == () for t in TASKS.values() if t.name != "mnli")
    # the GLUE server scores the diagnostic set with Matthews' correlation
    assert get_task("ax").main_metric == "matthews" and get_task("ax").metrics == ("matthews",)
    assert [(f.name, f.task, f.split, f.rows) for f in get_task("mnli").server_files] == [
        ("MNLI-m.tsv", "mnli", "test_matched", 9796), ("MNLI-mm.tsv", "mnli", "test_mismatched", 9847)]
    assert len(SERVER_FILES) == 11 and SERVER_FILES["AX.tsv"].rows == 1104


def test_report_and_sweep_read_the_same_facts():
    """reporting/ and sweeping/ keep their public names, derived from glue/tasks.py: they agree."""
    from glue.submission import SUBMISSION_FILES
    from reporting import tasks as report
    from sweeping.estimate import GLUE_SIZES

    assert report.MAIN_METRIC == {n: t.main_metric for n, t in TASKS.items()}
    assert report.main_metric("ax") == "matthews" and report.main_metric("cola") == "matthews"
    assert report.TEST_SIZE == {"cola": 1063, "sst2": 1821, "mrpc": 1725, "stsb": 1379, "qqp": 390965,
                                "mnli": 9796, "mnli_mm": 9847, "qnli": 5463, "rte": 3000,
                                "wnli": 146, "ax": 1104}
    assert {n: report.display(n) for n in TASKS} == DISPLAY_NAMES and report.display("average") == "Avg"
    assert report.GLUE_FILES == list(SUBMISSION_FILES) == list(SERVER_FILES)
    assert report.TASK_FILES["mnli"] == ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"]
    assert report.TASK_FILES["ax"] == ["AX.tsv"] and report.TASK_FILES["sst2"] == ["SST-2.tsv"]
    assert set(GLUE_SIZES) == set(TASK_NAMES) - {"ax"}
    for name, (train, validation, test) in GLUE_SIZES.items():
        sizes = OFFICIAL_SIZES[name]
        assert train == sizes["train"]
        assert validation == sum(v for s, v in sizes.items() if s.startswith("validation"))
        ax = 1104 if name == "mnli" else 0  # the MNLI run predicts the diagnostic set too
        assert test == sum(v for s, v in sizes.items() if s.startswith("test")) + ax
