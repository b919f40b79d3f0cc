"""GLUE server submission files: names, header, label strings, STS-B clipping, round trip, zip."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from glue.submission import (
    SUBMISSION_FILES,
    SubmissionError,
    check_submission,
    make_submission_zip,
    read_predictions,
    write_predictions,
    write_validation_predictions,
)
from glue.tasks import SERVER_FILES, TASKS, get_task

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


# The official GLUE test-set sizes (the GLUE server's), written out independently of glue/tasks.py.
OFFICIAL_TEST_ROWS = {
    "CoLA.tsv": 1063, "SST-2.tsv": 1821, "MRPC.tsv": 1725, "STS-B.tsv": 1379, "QQP.tsv": 390965,
    "MNLI-m.tsv": 9796, "MNLI-mm.tsv": 9847, "QNLI.tsv": 5463, "RTE.tsv": 3000, "WNLI.tsv": 146,
    "AX.tsv": 1104,
}


@pytest.fixture(scope="module")
def complete_files(tmp_path_factory):
    """Prediction files of the official test sizes (synthetic predictions)."""
    out = tmp_path_factory.mktemp("complete")
    rng = np.random.default_rng(0)
    for (task, split), name in EXPECTED_NAMES.items():
        spec, n = get_task(task), OFFICIAL_TEST_ROWS[name]
        preds = rng.uniform(0, 5, n) if spec.is_regression else rng.integers(0, spec.num_labels, n)
        write_predictions(task, split, np.arange(n), preds, out)
    return out


def test_complete_submission_is_accepted(complete_files, tmp_path):
    checks = check_submission(complete_files)
    assert [c.name for c in checks] == list(SUBMISSION_FILES)
    assert all(c.ok for c in checks), [str(c) for c in checks if not c.ok]
    assert {c.name: c.rows for c in checks} == OFFICIAL_TEST_ROWS
    z = make_submission_zip(sorted(complete_files.glob("*.tsv")), tmp_path / "sub.zip")
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(OFFICIAL_TEST_ROWS)
        assert zf.read("QQP.tsv") == (complete_files / "QQP.tsv").read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_partial_submission_is_refused_with_a_message_per_file(tmp_path, caplog):
    written = _write_all(tmp_path / "preds", n=9)  # every file, 9 rows each
    paths = [p for p, _, _ in written.values()]
    with pytest.raises(SubmissionError) as refused:
        make_submission_zip(paths, tmp_path / "sub.zip")
    assert not (tmp_path / "sub.zip").exists()
    lines = str(refused.value).splitlines()[1:]
    assert len(lines) == len(refused.value.checks) == 11
    for name, rows in OFFICIAL_TEST_ROWS.items():
        line = next(x for x in lines if x.strip().startswith(name + ":"))
        assert "holds 9 rows" in line and f"expects {rows:,} rows" in line, line
    assert "  QQP.tsv: holds 9 rows; the GLUE server expects 390,965 rows (the QQP test set)" in lines
    # the flag writes it anyway, for a dry run, and says what is wrong with each file
    with caplog.at_level("WARNING", logger="glue.submission"):
        z = make_submission_zip(paths, tmp_path / "sub.zip", partial=True)
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(SUBMISSION_FILES)
    assert sum("partial GLUE submission" in r.getMessage() for r in caplog.records) == 11


def test_missing_files_are_named(complete_files, tmp_path):
    keep = [complete_files / n for n in SUBMISSION_FILES if n not in ("AX.tsv", "MNLI-mm.tsv")]
    with pytest.raises(SubmissionError) as refused:
        make_submission_zip(keep, tmp_path / "sub.zip")
    assert [c.name for c in refused.value.checks] == ["MNLI-mm.tsv", "AX.tsv"]
    assert "AX.tsv: missing; the GLUE server expects 1,104 rows (the AX test set)" in str(refused.value)
    assert "MNLI-mm.tsv: missing; the GLUE server expects 9,847 rows" in str(refused.value)
    part = make_submission_zip([complete_files / "RTE.tsv"], tmp_path / "part.zip", partial=True)
    with zipfile.ZipFile(part) as zf:
        assert zf.namelist() == ["RTE.tsv"]


def test_a_full_size_file_with_a_bad_row_is_refused(complete_files, tmp_path):
    rte = (complete_files / "RTE.tsv").read_text().splitlines()
    dup = tmp_path / "dup" / "RTE.tsv"
    dup.parent.mkdir()
    dup.write_text("\n".join(rte[:-1] + ["0\tentailment"]) + "\n")  # index 0 twice, 3000 rows
    check = check_submission([dup])[SUBMISSION_FILES.index("RTE.tsv")]
    assert (check.rows, check.problem) == (3000, "index 0 occurs twice")
    bad = tmp_path / "bad" / "RTE.tsv"
    bad.parent.mkdir()
    bad.write_text("\n".join(rte[:-1] + ["2999\tmaybe"]) + "\n")
    check = check_submission([bad])[SUBMISSION_FILES.index("RTE.tsv")]
    assert check.problem.startswith("unreadable") and "maybe" in check.problem


def test_zip_input_errors(tmp_path):
    written = _write_all(tmp_path / "preds")
    (tmp_path / "preds" / "validation.tsv").write_text("index\tprediction\n")
    with pytest.raises(ValueError, match="not GLUE submission files"):
        make_submission_zip([tmp_path / "preds" / "validation.tsv"], tmp_path / "bad.zip")
    rte = written[("rte", "test")][0]
    with pytest.raises(ValueError, match="duplicate submission files"):
        make_submission_zip([rte, rte], tmp_path / "bad.zip", partial=True)
    with pytest.raises(FileNotFoundError, match="RTE.tsv"):
        make_submission_zip([tmp_path / "nowhere" / "RTE.tsv"], tmp_path / "bad.zip", partial=True)
    z = make_submission_zip(tmp_path / "preds", tmp_path / "folder.zip", partial=True)  # a folder
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(SUBMISSION_FILES)


def test_every_task_has_its_server_files():
    names = [stem + ".tsv" for t in TASKS.values() for _, stem in t.test_splits]
    assert sorted(names) == sorted(SUBMISSION_FILES) == sorted(OFFICIAL_TEST_ROWS)
    assert {n: SERVER_FILES[n].rows for n in SUBMISSION_FILES} == OFFICIAL_TEST_ROWS
