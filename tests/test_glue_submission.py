"""GLUE server submission files: names, header, label strings, STS-B clipping, round trip, zip."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from glue.submission import (
    SUBMISSION_FILES,
    make_submission_zip,
    read_predictions,
    write_predictions,
    write_validation_predictions,
)
from glue.tasks import TASKS, get_task

EXPECTED_NAMES = {
    ("cola", "test"): "CoLA.tsv", ("sst2", "test"): "SST-2.tsv", ("mrpc", "test"): "MRPC.tsv",
    ("stsb", "test"): "STS-B.tsv", ("qqp", "test"): "QQP.tsv",
    ("mnli", "test_matched"): "MNLI-m.tsv", ("mnli", "test_mismatched"): "MNLI-mm.tsv",
    ("qnli", "test"): "QNLI.tsv", ("rte", "test"): "RTE.tsv", ("wnli", "test"): "WNLI.tsv",
    ("ax", "test"): "AX.tsv",
}
STRINGS = {
    "mnli": {"entailment", "neutral", "contradiction"},
    "ax": {"entailment", "neutral", "contradiction"},
    "qnli": {"entailment", "not_entailment"},
    "rte": {"entailment", "not_entailment"},
}


def _write_all(out_dir, n=40, seed=0):
    rng = np.random.default_rng(seed)
    written = {}
    for (task, split), _ in EXPECTED_NAMES.items():
        spec = get_task(task)
        idx = rng.permutation(n)  # shuffled on purpose: files must come out in idx order
        preds = rng.uniform(-1, 6, n) if spec.is_regression else rng.integers(0, spec.num_labels, n)
        written[(task, split)] = (write_predictions(task, split, idx, preds, out_dir), idx, preds)
    return written


def test_round_trip_all_files(tmp_path):
    written = _write_all(tmp_path)
    assert sorted(p.name for p, _, _ in written.values()) == sorted(SUBMISSION_FILES)
    assert len(SUBMISSION_FILES) == 11
    for (task, split), (path, idx, preds) in written.items():
        assert path.name == EXPECTED_NAMES[(task, split)]
        lines = path.read_text().splitlines()
        assert lines[0] == "index\tprediction"
        assert len(lines) == 1 + len(idx)
        rows = [line.split("\t") for line in lines[1:]]
        assert [int(r[0]) for r in rows] == list(range(len(idx)))  # test-file order
        order = np.argsort(idx)
        raw = [r[1] for r in rows]
        spec = get_task(task)
        if task in STRINGS:
            assert set(raw) <= STRINGS[task]
            names = spec.label_names
            assert raw == [names[i] for i in preds[order]]
        elif spec.is_regression:
            assert all(len(v.split(".")[1]) == 3 for v in raw)
            vals = np.array([float(v) for v in raw])
            assert vals.min() >= 0.0 and vals.max() <= 5.0
            assert vals == pytest.approx(np.round(np.clip(preds[order], 0, 5), 3), abs=1e-9)
        else:
            assert set(raw) <= {"0", "1"}
            assert raw == [str(i) for i in preds[order]]
        df = read_predictions(path)  # task inferred from the file name
        assert list(df.columns) == ["index", "prediction"]
        assert df["index"].tolist() == list(range(len(idx)))
        if spec.is_regression:
            assert df["prediction"].to_numpy() == pytest.approx(
                np.clip(preds[order], 0, 5), abs=5e-4)
        else:
            assert df["prediction"].tolist() == preds[order].tolist()
        raw_df = read_predictions(path, decode=False)
        assert raw_df["prediction"].tolist() == raw


def test_stsb_clipping_and_format(tmp_path):
    p = write_predictions("stsb", "test", [0, 1, 2, 3], [-0.7, 5.2, 2.34567, 4.0], tmp_path)
    assert p.read_text() == "index\tprediction\n0\t0.000\n1\t5.000\n2\t2.346\n3\t4.000\n"


def test_label_strings_and_logits(tmp_path):
    logits = np.array([[0.1, 0.9], [2.0, -1.0]])
    p = write_predictions("rte", "test", [0, 1], logits, tmp_path)
    assert p.read_text() == "index\tprediction\n0\tnot_entailment\n1\tentailment\n"
    p = write_predictions("wnli", "test", [0, 1], [1, 0], tmp_path)  # WNLI: 0/1, not strings
    assert p.read_text() == "index\tprediction\n0\t1\n1\t0\n"
    p = write_predictions("AX", "test", [0, 1, 2], [2, 1, 0], tmp_path)
    assert p.name == "AX.tsv"
    assert p.read_text().split("\n")[1:4] == ["0\tcontradiction", "1\tneutral", "2\tentailment"]


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="test_matched"):
        write_predictions("mnli", "test", [0], [0], tmp_path)
    with pytest.raises(ValueError, match="not a test split"):
        write_predictions("rte", "validation", [0], [0], tmp_path)
    with pytest.raises(ValueError, match="outside"):
        write_predictions("rte", "test", [0], [2], tmp_path)
    with pytest.raises(ValueError, match="2 indices but 1"):
        write_predictions("rte", "test", [0, 1], [0], tmp_path)
    with pytest.raises(ValueError, match="duplicate"):
        write_predictions("rte", "test", [0, 0], [0, 1], tmp_path)


def test_validation_predictions_round_trip(tmp_path):
    p = write_validation_predictions("mnli", "validation_matched", [2, 0, 1], [0, 1, 2],
                                     [0, 0, 2], tmp_path)
    assert p.name == "validation_matched.tsv"
    assert p.read_text().splitlines() == ["index\tprediction\tlabel",
                                          "0\tneutral\tentailment",
                                          "1\tcontradiction\tcontradiction",
                                          "2\tentailment\tentailment"]
    df = read_predictions(p, task="mnli")
    assert df["index"].tolist() == [0, 1, 2]
    assert df["prediction"].tolist() == [1, 2, 0] and df["label"].tolist() == [0, 2, 0]
    p = write_validation_predictions("stsb", "validation", [0, 1], [5.5, 1.0], [4.2, 0.5], tmp_path)
    assert p.name == "validation.tsv"
    df = read_predictions(p, task="stsb")
    assert df["prediction"].tolist() == [5.0, 1.0] and df["label"].tolist() == [4.2, 0.5]
    with pytest.raises(ValueError):
        write_validation_predictions("mnli", "validation", [0], [0], [0], tmp_path)


def test_submission_zip(tmp_path):
    written = _write_all(tmp_path / "preds")
    z = make_submission_zip([p for p, _, _ in written.values()], tmp_path / "sub.zip",
                            require_all=True)
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(SUBMISSION_FILES)
        assert zf.read("RTE.tsv") == (tmp_path / "preds" / "RTE.tsv").read_bytes()
    z2 = make_submission_zip(tmp_path / "preds", tmp_path / "sub2.zip")  # a folder
    with zipfile.ZipFile(z2) as zf:
        assert sorted(zf.namelist()) == sorted(SUBMISSION_FILES)
    (tmp_path / "preds" / "validation.tsv").write_text("index\tprediction\n")
    with pytest.raises(ValueError, match="not GLUE submission files"):
        make_submission_zip([tmp_path / "preds" / "validation.tsv"], tmp_path / "bad.zip")
    with pytest.raises(FileNotFoundError, match="missing"):
        make_submission_zip([tmp_path / "preds" / "RTE.tsv"], tmp_path / "part.zip",
                            require_all=True)
    part = make_submission_zip([tmp_path / "preds" / "RTE.tsv"], tmp_path / "part.zip")
    with zipfile.ZipFile(part) as zf:
        assert zf.namelist() == ["RTE.tsv"]


def test_every_task_has_its_server_files():
    names = [stem + ".tsv" for t in TASKS.values() for _, stem in t.test_splits]
    assert sorted(names) == sorted(SUBMISSION_FILES)
