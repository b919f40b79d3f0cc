"""What the data did, on the record: a run's metrics.json names the rows it read and skipped, and
report.py's run listing shows a non-zero count (tiny model, sample data, CPU)."""
import csv
import json
import shutil

from glue import get_task
from glue.loading import SAMPLE_DIR
from reporting.runner import ReportOptions, run_report
from rundir import run_dir
from training.data import RunData
from training.model import build_tokenizer
from training.run import run


def test_a_malformed_row_is_named_in_metrics_json_and_the_report(tiny_run, tmp_path):
    glue_dir = tmp_path / "glue_data"
    shutil.copytree(SAMPLE_DIR / "QQP", glue_dir / "QQP")
    train = glue_dir / "QQP" / "train.tsv"
    lines = train.read_text(encoding="utf-8").split("\n")
    lines.insert(99, "123456\ta row cut short")  # becomes line 100: 2 of the 6 fields
    train.write_text("\n".join(lines), encoding="utf-8")
    # the sample's QQP train file has two malformed rows of its own (lines 39 and 40), as the real one
    cfg, overrides = tiny_run("task=qqp", "data=glue_dir", f"data.dir={glue_dir}", "init_from=null")
    metrics = run(cfg, overrides)
    assert metrics["status"] == "done", metrics["reason"]
    data = json.loads((run_dir(cfg) / "metrics.json").read_text())["data"]
    assert set(data) == {"train", "validation", "test"}
    assert data["train"] == {"file": str(train), "rows_in_file": 403, "rows_read": 400,
                             "rows_skipped": 3, "skipped_lines": [39, 40, 100]}
    assert data["train"]["rows_read"] == metrics["train_examples"]
    for split, name in (("validation", "dev.tsv"), ("test", "test.tsv")):
        assert data[split]["file"] == str(glue_dir / "QQP" / name)
        assert data[split]["rows_skipped"] == 0 and data[split]["skipped_lines"] == []
        assert data[split]["rows_read"] == data[split]["rows_in_file"] > 0

    messages: list[str] = []
    run_report(ReportOptions(results_dir=cfg.results_dir, figures=False, submission=False), echo=messages.append)
    assert any(m.strip() == f"{run_dir(cfg)}: 3 malformed data row(s) skipped (metrics.json 'data' "
               "names the lines)" for m in messages), messages
    with open(tmp_path / "results" / "tables" / "runs.csv", newline="") as listing:
        assert [row["rows_skipped"] for row in csv.DictReader(listing)] == ["3"]


def test_an_mnli_run_records_the_diagnostic_set_too(tiny_run):
    cfg, _ = tiny_run("task=mnli")
    record = RunData(cfg, get_task("mnli"), build_tokenizer(cfg)).record()
    assert set(record) == {"train", "validation_matched", "validation_mismatched", "test_matched",
                           "test_mismatched", "ax/test"}
    assert record["ax/test"]["file"] == str(SAMPLE_DIR / "diagnostic" / "diagnostic.tsv")
    assert all(r["rows_skipped"] == 0 and r["rows_read"] == r["rows_in_file"] > 0
               for r in record.values())
