"""GLUE loading: original GLUE TSV layout (with its quirks) == the Hub's column layout; errors;
the bundled sample; the Hub path offline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glue.loading import (
    MAX_SKIPPED_LINES,
    GlueDataUnavailableError,
    SAMPLE_DIR,
    SplitRecord,
    split_records,
    features_for,
    load_glue,
    skipped_rows,
)
from glue.tasks import TASK_NAMES, get_task

REPO = Path(__file__).resolve().parent.parent

# The Hub's schema (nyu-mll/glue), written out independently of glue/tasks.py.
HUB_COLUMNS = {
    "cola": ["sentence", "label", "idx"],
    "sst2": ["sentence", "label", "idx"],
    "mrpc": ["sentence1", "sentence2", "label", "idx"],
    "qqp": ["question1", "question2", "label", "idx"],
    "stsb": ["sentence1", "sentence2", "label", "idx"],
    "mnli": ["premise", "hypothesis", "label", "idx"],
    "qnli": ["question", "sentence", "label", "idx"],
    "rte": ["sentence1", "sentence2", "label", "idx"],
    "wnli": ["sentence1", "sentence2", "label", "idx"],
    "ax": ["premise", "hypothesis", "label", "idx"],
}
HUB_LABELS = {
    "cola": ["unacceptable", "acceptable"],
    "sst2": ["negative", "positive"],
    "mrpc": ["not_equivalent", "equivalent"],
    "qqp": ["not_duplicate", "duplicate"],
    "mnli": ["entailment", "neutral", "contradiction"],
    "qnli": ["entailment", "not_entailment"],
    "rte": ["entailment", "not_entailment"],
    "wnli": ["not_entailment", "entailment"],
    "ax": ["entailment", "neutral", "contradiction"],
}
HUB_SPLITS = {
    "mnli": ["train", "validation_matched", "validation_mismatched", "test_matched",
             "test_mismatched"],
    "ax": ["test"],
}
NLI3 = ["entailment", "neutral", "contradiction"]
NLI2 = ["entailment", "not_entailment"]

# ---------------------------------------------------------------------------------------------
# Hub-layout records: split -> list of (text fields..., label); test rows carry label -1 and
# idx = the test file's index column.  Texts carry quotes and non-ASCII, as the real data does.
# ---------------------------------------------------------------------------------------------
TXT = [
    'He said "hello.',
    "The café's \"best\" dish — unquoted",
    "'Tis a plain sentence .",
    'Two ""double"" quotes here',
    "Ünïcödé and emoji 🙂 text",
    "a b c",
]


def _pair_rows(labels):
    return [(TXT[i % 6], TXT[(i + 2) % 6], y) for i, y in enumerate(labels)]


RECORDS = {
    "cola": {"train": [(TXT[0], 1), (TXT[1], 0), (TXT[2], 1)],
             "validation": [(TXT[3], 0), (TXT[4], 1)],
             "test": [(TXT[5], -1), (TXT[0], -1)]},
    "sst2": {"train": [(TXT[0], 1), (TXT[1], 0), (TXT[3], 0)],
             "validation": [(TXT[4], 1)],
             "test": [(TXT[2], -1), (TXT[5], -1)]},
    "mrpc": {"train": _pair_rows([1, 0, 1]), "validation": _pair_rows([0, 1]),
             "test": _pair_rows([-1, -1])},
    "qqp": {"train": _pair_rows([0, 1, 1, 0]), "validation": _pair_rows([1, 0]),
            "test": _pair_rows([-1, -1, -1])},
    "stsb": {"train": _pair_rows([0.0, 3.8, 5.0]), "validation": _pair_rows([2.5, 1.2]),
             "test": _pair_rows([-1.0, -1.0])},
    "mnli": {"train": _pair_rows([0, 1, 2, 1]), "validation_matched": _pair_rows([2, 0]),
             "validation_mismatched": _pair_rows([1, 1, 0]),
             "test_matched": _pair_rows([-1, -1]), "test_mismatched": _pair_rows([-1])},
    "qnli": {"train": _pair_rows([0, 1, 1]), "validation": _pair_rows([1, 0]),
             "test": _pair_rows([-1, -1])},
    "rte": {"train": _pair_rows([1, 0, 0]), "validation": _pair_rows([0, 1]),
            "test": _pair_rows([-1, -1])},
    "wnli": {"train": _pair_rows([1, 0, 1]), "validation": _pair_rows([0, 1]),
             "test": _pair_rows([-1, -1])},
    "ax": {"test": _pair_rows([-1, -1, -1])},
}


def _w(path: Path, lines, bom=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join("\t".join(str(x) for x in line) + "\n" for line in lines)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))


def _mnli_row(i, p, h, labels):
    return [i, 100 + i, f"{100 + i}n", "fiction", f"( {p} )", f"( {h} )", f"(ROOT {p})",
            f"(ROOT {h})", p, h] + labels


def write_glue_layout(root: Path, records=RECORDS):
    """Write RECORDS in the original GLUE download layout, quirks included (independently of
    the loader: column positions from the GLUE reference)."""
    R = records
    # CoLA: train/dev without header, 4 columns; test with header
    for split, fname in (("train", "train.tsv"), ("validation", "dev.tsv")):
        _w(root / "CoLA" / fname,
           [("gj04", y, "" if y else "*", s) for s, y in R["cola"][split]])
    _w(root / "CoLA/test.tsv", [("index", "sentence")]
       + [(i, s) for i, (s, _) in enumerate(R["cola"]["test"])])
    # SST-2
    for split, fname in (("train", "train.tsv"), ("validation", "dev.tsv")):
        _w(root / "SST-2" / fname, [("sentence", "label")] + list(R["sst2"][split]))
    _w(root / "SST-2/test.tsv", [("index", "sentence")]
       + [(i, s) for i, (s, _) in enumerate(R["sst2"]["test"])])
    # MRPC: BOM on train; Quality first
    hdr = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
    for split, fname in (("train", "train.tsv"), ("validation", "dev.tsv")):
        _w(root / "MRPC" / fname, [hdr] + [(y, 11 + i, 22 + i, a, b)
                                          for i, (a, b, y) in enumerate(R["mrpc"][split])],
           bom=(split == "train"))
    _w(root / "MRPC/test.tsv", [("index",) + hdr[1:]]
       + [(i, 1, 2, a, b) for i, (a, b, _) in enumerate(R["mrpc"]["test"])])
    # QQP: two malformed rows (a question broken by a newline) in train
    hdr = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
    train = [(500 + i, i, i + 1, a, b, y) for i, (a, b, y) in enumerate(R["qqp"]["train"])]
    train.insert(2, (999, 1, 2, "broken\nquestion", "other", 1))  # -> lines of 4 and 3 fields
    _w(root / "QQP/train.tsv", [hdr] + train)
    _w(root / "QQP/dev.tsv", [hdr] + [(700 + i, i, i + 1, a, b, y)
                                      for i, (a, b, y) in enumerate(R["qqp"]["validation"])])
    _w(root / "QQP/test.tsv", [("id", "question1", "question2")]
       + [(i, a, b) for i, (a, b, _) in enumerate(R["qqp"]["test"])])
    # STS-B: 10 columns, score last; test 9
    hdr = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
           "sentence1", "sentence2", "score")
    for split, fname in (("train", "train.tsv"), ("validation", "dev.tsv")):
        _w(root / "STS-B" / fname, [hdr] + [(i, "main-news", "f", "2012", i, "n", "n", a, b, y)
                                            for i, (a, b, y) in enumerate(R["stsb"][split])])
    _w(root / "STS-B/test.tsv", [hdr[:-1]] + [(i, "main-news", "f", "2012", i, "n", "n", a, b)
                                              for i, (a, b, _) in enumerate(R["stsb"]["test"])])
    # MNLI: parses, string labels, gold label last (train 12 columns, dev 16, test 10)
    base = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
            "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
            "sentence2"]
    _w(root / "MNLI/train.tsv", [base + ["label1", "gold_label"]]
       + [_mnli_row(i, p, h, ["neutral", NLI3[y]])
          for i, (p, h, y) in enumerate(R["mnli"]["train"])])
    for split, fname in (("validation_matched", "dev_matched.tsv"),
                         ("validation_mismatched", "dev_mismatched.tsv")):
        _w(root / "MNLI" / fname,
           [base + [f"label{k}" for k in range(1, 6)] + ["gold_label"]]
           + [_mnli_row(i, p, h, ["contradiction"] * 5 + [NLI3[y]])
              for i, (p, h, y) in enumerate(R["mnli"][split])])
    for split, fname in (("test_matched", "test_matched.tsv"),
                         ("test_mismatched", "test_mismatched.tsv")):
        _w(root / "MNLI" / fname, [base] + [_mnli_row(i, p, h, [])
                                           for i, (p, h, _) in enumerate(R["mnli"][split])])
    # QNLI, RTE: string labels; WNLI 0/1
    for task, folder, cols, names in (("qnli", "QNLI", ("question", "sentence"), NLI2),
                                      ("rte", "RTE", ("sentence1", "sentence2"), NLI2),
                                      ("wnli", "WNLI", ("sentence1", "sentence2"), None)):
        for split, fname in (("train", "train.tsv"), ("validation", "dev.tsv")):
            _w(root / folder / fname, [("index",) + cols + ("label",)]
               + [(i, a, b, names[y] if names else y)
                  for i, (a, b, y) in enumerate(R[task][split])])
        _w(root / folder / "test.tsv", [("index",) + cols]
           + [(i, a, b) for i, (a, b, _) in enumerate(R[task]["test"])])
    # AX: diagnostic/diagnostic.tsv
    _w(root / "diagnostic/diagnostic.tsv", [("index", "sentence1", "sentence2")]
       + [(i, a, b) for i, (a, b, _) in enumerate(R["ax"]["test"])])
    return root


def hub_layout(task: str, split: str) -> dict[str, list]:
    """The Hub's columns for RECORDS[task][split]."""
    cols = HUB_COLUMNS[task]
    out = {c: [] for c in cols}
    for i, row in enumerate(RECORDS[task][split]):
        *texts, label = row
        for c, t in zip(cols[:-2], texts):
            out[c].append(t)
        out["label"].append(label)
        out["idx"].append(i)
    return out


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    return write_glue_layout(tmp_path_factory.mktemp("glue_data"))


@pytest.mark.parametrize("task", TASK_NAMES)
def test_glue_dir_equals_hub_layout(glue_dir, task):
    dd = load_glue(task, "glue_dir", data_dir=glue_dir)
    assert list(dd) == HUB_SPLITS.get(task, ["train", "validation", "test"])
    assert list(dd) == list(get_task(task).splits)
    for split, ds in dd.items():
        assert ds.column_names == HUB_COLUMNS[task], split
        assert ds.features == features_for(task)
        expected = hub_layout(task, split)
        got = ds.to_dict()
        for col in HUB_COLUMNS[task]:
            if task == "stsb" and col == "label":
                assert got[col] == pytest.approx(expected[col], abs=1e-6), (split, col)
            else:
                assert got[col] == expected[col], (split, col)
        if task in HUB_LABELS:
            assert ds.features["label"].names == HUB_LABELS[task]
            assert ds.features["label"].dtype == "int64"
        else:
            assert ds.features["label"].dtype == "float32"
        assert ds.features["idx"].dtype == "int32"
    expected_skips = {"qqp": {"train": 2, "validation": 0, "test": 0}}
    assert skipped_rows(dd) == expected_skips.get(task, {s: 0 for s in dd})


def test_qqp_skipped_count_survives_map_and_is_logged(glue_dir, caplog):
    with caplog.at_level("WARNING", logger="glue.loading"):
        dd = load_glue("qqp", "glue_dir", data_dir=glue_dir)
    assert dd.skipped_rows == {"train": 2, "validation": 0, "test": 0}
    assert any("skipped 2 malformed" in r.getMessage() for r in caplog.records)
    mapped = dd.map(lambda x: x)
    assert skipped_rows(mapped)["train"] == 2
    assert "skipped_malformed_rows=2" in dd["train"].info.description
    assert any("line(s) 4, 5" in r.getMessage() for r in caplog.records)


def test_record_names_the_file_the_rows_and_the_skipped_lines(glue_dir):
    records = split_records(load_glue("qqp", "glue_dir", data_dir=glue_dir))
    # header on line 1, rows on 2-3, the row broken by a newline on lines 4 and 5, rows on 6-7
    assert records["train"] == SplitRecord(str(glue_dir / "QQP" / "train.tsv"), 6, 4, (4, 5))
    assert records["train"].as_dict() == {
        "file": str(glue_dir / "QQP" / "train.tsv"), "rows_in_file": 6, "rows_read": 4,
        "rows_skipped": 2, "skipped_lines": [4, 5]}
    assert records["validation"] == SplitRecord(str(glue_dir / "QQP" / "dev.tsv"), 2, 2)
    assert records["test"].rows_skipped == 0 and records["test"].rows_read == 3
    mnli = split_records(load_glue("mnli", "glue_dir", data_dir=glue_dir, splits=["test_mismatched"]))
    assert mnli == {"test_mismatched": SplitRecord(str(glue_dir / "MNLI" / "test_mismatched.tsv"), 1, 1)}


def test_record_keeps_a_few_lines_and_counts_them_all(tmp_path):
    hdr = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
    rows = [hdr] + [(i, 1, 2, "a", "b", 0) if i % 2 else (i, "cut") for i in range(40)]
    _w(tmp_path / "QQP" / "train.tsv", rows)
    record = split_records(load_glue("qqp", "glue_dir", data_dir=tmp_path, splits=["train"]))["train"]
    assert (record.rows_in_file, record.rows_read, record.rows_skipped) == (40, 20, 20)
    assert record.skipped_lines == tuple(range(2, 2 + 2 * MAX_SKIPPED_LINES, 2))  # rows 0, 2, 4 ...


def test_ax_alternative_file_name(tmp_path):
    _w(tmp_path / "AX.tsv", [("index", "sentence1", "sentence2"), (0, "a b", "c d")])
    dd = load_glue("AX", "glue_dir", data_dir=tmp_path)
    assert dd["test"].to_dict() == {"premise": ["a b"], "hypothesis": ["c d"], "label": [-1],
                                    "idx": [0]}


def test_load_only_some_splits(glue_dir):
    dd = load_glue("mnli", "glue_dir", data_dir=glue_dir, splits=["validation_mismatched"])
    assert list(dd) == ["validation_mismatched"] and len(dd["validation_mismatched"]) == 3


# ------------------------------------------------------------------------------ errors ---------


def test_unknown_task_and_source(glue_dir):
    with pytest.raises(ValueError, match="known tasks: cola, sst2.*rte.*ax"):
        load_glue("glue-xyz", "glue_dir", data_dir=glue_dir)
    with pytest.raises(ValueError, match="hub, glue_dir, sample"):
        load_glue("rte", "s3", data_dir=glue_dir)
    with pytest.raises(ValueError, match="data=glue_dir data.dir="):
        load_glue("rte", "glue_dir")


def test_missing_folder(tmp_path):
    missing = tmp_path / "no_such_glue"
    with pytest.raises(FileNotFoundError) as e:
        load_glue("rte", "glue_dir", data_dir=missing)
    msg = str(e.value)
    assert str(missing) in msg and "expected the GLUE layout" in msg
    assert str(missing / "RTE" / "train.tsv") in msg
    # the GLUE folder exists but not the task folder
    (tmp_path / "glue").mkdir()
    with pytest.raises(FileNotFoundError, match="RTE") as e:
        load_glue("rte", "glue_dir", data_dir=tmp_path / "glue")
    assert str(tmp_path / "glue" / "RTE" / "train.tsv") in str(e.value)


def test_missing_file(tmp_path):
    _w(tmp_path / "RTE/train.tsv", [("index", "sentence1", "sentence2", "label"),
                                    (0, "a", "b", "entailment")])
    with pytest.raises(FileNotFoundError) as e:
        load_glue("rte", "glue_dir", data_dir=tmp_path)
    assert str(tmp_path / "RTE" / "dev.tsv") in str(e.value)
    assert "expected the GLUE layout" in str(e.value)
    with pytest.raises(FileNotFoundError, match="dev_matched.tsv"):
        load_glue("mnli", "glue_dir", data_dir=tmp_path, splits=["validation_matched"])


def test_unparseable_row_names_file_and_line(tmp_path):
    path = tmp_path / "RTE/train.tsv"
    _w(path, [("index", "sentence1", "sentence2", "label"), (0, "a", "b", "entailment"),
              (1, "only two fields")])
    with pytest.raises(ValueError) as e:
        load_glue("rte", "glue_dir", data_dir=tmp_path, splits=["train"])
    assert f"{path}:3" in str(e.value) and "cannot parse" in str(e.value)
    # CoLA: headerless 4-column file with a 3-column row
    path = tmp_path / "CoLA/dev.tsv"
    _w(path, [("gj04", 1, "", "fine ."), ("gj04", 1, "broken")])
    with pytest.raises(ValueError, match=rf"{path}:2"):
        load_glue("cola", "glue_dir", data_dir=tmp_path, splits=["validation"])
    # a file that should have a header but has none
    path = tmp_path / "SST-2/train.tsv"
    _w(path, [("a fine movie", 1)])
    with pytest.raises(ValueError, match=rf"{path}:1.*header"):
        load_glue("sst2", "glue_dir", data_dir=tmp_path, splits=["train"])
    # a test file whose index is not a number
    path = tmp_path / "RTE/test.tsv"
    _w(path, [("index", "sentence1", "sentence2"), ("x", "a", "b")])
    with pytest.raises(ValueError, match=rf"{path}:2"):
        load_glue("rte", "glue_dir", data_dir=tmp_path, splits=["test"])


@pytest.mark.parametrize(
    "task,rel,lines,bad,lineno",
    [
        ("rte", "RTE/dev.tsv", [("index", "sentence1", "sentence2", "label"),
                                (0, "a", "b", "not_entailment"), (1, "a", "b", "maybe")],
         "maybe", 3),
        ("wnli", "WNLI/dev.tsv", [("index", "sentence1", "sentence2", "label"),
                                  (0, "a", "b", "2")], "2", 2),
        ("sst2", "SST-2/dev.tsv", [("sentence", "label"), ("ok", "positive")], "positive", 2),
        ("stsb", "STS-B/dev.tsv", [("index",) + ("x",) * 9,
                                   (0, "g", "f", "y", 0, "s", "s", "a", "b", "5.5")], "5.5", 2),
    ],
)
def test_label_outside_set(tmp_path, task, rel, lines, bad, lineno):
    _w(tmp_path / rel, lines)
    with pytest.raises(ValueError) as e:
        load_glue(task, "glue_dir", data_dir=tmp_path, splits=["validation"])
    msg = str(e.value)
    assert f"{tmp_path / rel}:{lineno}" in msg and repr(bad) in msg and "label" in msg


def test_mnli_label_outside_set(tmp_path):
    base = ["index", "promptID", "pairID", "genre", "b1", "b2", "p1", "p2", "sentence1",
            "sentence2", "label1", "gold_label"]
    _w(tmp_path / "MNLI/train.tsv", [base, _mnli_row(0, "a", "b", ["neutral", "-"])])
    with pytest.raises(ValueError, match=r"train.tsv:2.*'-'"):
        load_glue("mnli", "glue_dir", data_dir=tmp_path, splits=["train"])


# ------------------------------------------------------------------------------ sample ---------


@pytest.mark.parametrize("task", TASK_NAMES)
def test_sample_loads(task):
    dd = load_glue(task, "sample")
    spec = get_task(task)
    assert list(dd) == list(spec.splits)
    for split, ds in dd.items():
        assert ds.column_names == HUB_COLUMNS[task]
        n = len(ds)
        if split.startswith("train"):
            assert n >= (800 if task == "sst2" else 400)
        elif split.startswith("validation"):
            assert n == 100
        else:
            assert n == 50
            assert set(ds["label"]) == {-1}
            assert ds["idx"] == list(range(n))
        if not split.startswith("test"):
            labels = ds["label"]
            if spec.is_regression:
                assert 0.0 <= min(labels) and max(labels) <= 5.0 and len(set(labels)) > 10
            else:  # every class present, roughly balanced
                counts = [labels.count(k) for k in range(spec.num_labels)]
                assert min(counts) >= 0.25 * n / spec.num_labels
    assert skipped_rows(dd) == {s: (2 if (task, s) == ("qqp", "train") else 0) for s in dd}


def test_sample_quirks_and_size():
    assert (SAMPLE_DIR / "MRPC/train.tsv").read_bytes().startswith(b"\xef\xbb\xbf")
    first = (SAMPLE_DIR / "CoLA/train.tsv").read_text().splitlines()[0].split("\t")
    assert len(first) == 4 and first[1] in ("0", "1")
    mnli = (SAMPLE_DIR / "MNLI/dev_matched.tsv").read_text().splitlines()
    assert mnli[1].split("\t")[-1] in NLI3 and len(mnli[0].split("\t")) == 16
    assert len((SAMPLE_DIR / "STS-B/train.tsv").read_text().splitlines()[0].split("\t")) == 10
    assert (SAMPLE_DIR / "diagnostic/diagnostic.tsv").is_file()
    assert (SAMPLE_DIR / "README.md").read_text().lower().count("synthetic") >= 1
    total = sum(p.stat().st_size for p in SAMPLE_DIR.rglob("*") if p.is_file())
    assert total < 1_000_000


def test_sample_generator_is_deterministic(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import make_sample_data
    finally:
        sys.path.remove(str(REPO / "scripts"))
    make_sample_data.main(tmp_path)
    committed = sorted(p.relative_to(SAMPLE_DIR) for p in SAMPLE_DIR.rglob("*.tsv"))
    assert committed == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.tsv"))
    for rel in committed:
        assert (tmp_path / rel).read_bytes() == (SAMPLE_DIR / rel).read_bytes(), rel


# ------------------------------------------------------------------------------ hub ------------


def test_hub_offline_empty_cache_points_at_glue_dir(tmp_path):
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               HF_DATASETS_CACHE=str(tmp_path / "hf" / "datasets"),
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    code = (
        "import sys\n"
        "from glue.loading import load_glue, GlueDataUnavailableError\n"
        "try:\n"
        f"    load_glue('rte', 'hub', cache_dir={str(tmp_path / 'cache')!r})\n"
        "except GlueDataUnavailableError as e:\n"
        "    assert isinstance(e, ConnectionError)\n"
        "    print('MSG', e); sys.exit(3)\n"
        "print('LOADED')\n"
    )
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.time() - t0
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "data=glue_dir data.dir=" in proc.stdout
    assert "nyu-mll/glue" in proc.stdout and "HF_HUB_OFFLINE" in proc.stdout
    assert elapsed < 60  # offline: no network retries


def test_hub_error_is_wrapped_in_process(monkeypatch, tmp_path):
    import datasets

    def boom(*a, **k):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(GlueDataUnavailableError, match=r"data=glue_dir data\.dir=/path/to/glue"):
        load_glue("sst2", "hub", cache_dir=tmp_path)


def test_hub_path_calls_load_dataset(monkeypatch, tmp_path):
    import datasets

    calls = []

    def fake(path, name, cache_dir=None):
        calls.append((path, name, cache_dir))
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"x": [1]}),
                                     "test": datasets.Dataset.from_dict({"x": [2]})})

    monkeypatch.setattr(datasets, "load_dataset", fake)
    dd = load_glue("SST-2", "hub", cache_dir=tmp_path)
    assert calls == [("nyu-mll/glue", "sst2", str(tmp_path))]
    assert list(dd) == ["train", "test"]
    assert split_records(dd) == {s: SplitRecord("hf://datasets/nyu-mll/glue/sst2", 1, 1)
                                 for s in ("train", "test")}
    assert list(load_glue("sst2", "hub", splits=["test"])) == ["test"]
