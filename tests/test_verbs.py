"""evaluate.py, predict.py and export.py on a finished tiny run (CPU, sample data): the same scores and
predictions as the run itself, a PEFT adapter that PEFT loads with the run's logits, a Hub upload
(mocked) of the exported folder with its model card."""
import csv
import json

import pytest
import torch

from glue import load_glue
from glue.submission import read_predictions
from training.config import HARNESS_ROOT
from training.run import run
from rundir import run_dir
from tests.conftest import entry


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from training.config import compose
    from conftest import TINY

    results = tmp_path_factory.mktemp("verbs")
    overrides = [*TINY, f"results_dir={results}", "task=rte", "init_from=null", "epochs=2"]
    metrics = run(compose(overrides), overrides)
    assert metrics["status"] == "done"
    return run_dir(compose(overrides)), metrics


def test_evaluate_gives_the_runs_validation_scores(finished, capsys):
    directory, metrics = finished
    assert entry("evaluate").main([str(directory)]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(metrics["best"])


def test_predictions_on_new_text_equal_the_runs_validation_predictions(finished, tmp_path, capsys):
    directory, _ = finished
    validation = load_glue("rte", source="sample")["validation"]
    new_text = tmp_path / "pairs.tsv"
    with open(new_text, "w", newline="") as f:  # the validation sentences, as a user's own file
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(["id", "sentence1", "sentence2"])
        for row in sorted(validation, key=lambda r: r["idx"]):
            writer.writerow([row["idx"], row["sentence1"], row["sentence2"]])
    assert entry("predict").main([str(directory), str(new_text), "--output", str(tmp_path / "out.tsv")]) == 0
    ours = read_predictions(tmp_path / "out.tsv", "rte")
    theirs = read_predictions(directory / "predictions" / "validation.tsv", "rte")
    assert len(ours) == len(theirs) == len(validation)
    assert ours["prediction"].tolist() == theirs.sort_values("index")["prediction"].tolist()


def test_predict_names_a_missing_column(finished, tmp_path, capsys):
    directory, _ = finished
    (tmp_path / "bad.jsonl").write_text('{"sentence1": "a"}\n')
    assert entry("predict").main([str(directory), str(tmp_path / "bad.jsonl")]) == 2
    assert "row 1: no ['sentence2']" in capsys.readouterr().err


def test_exported_peft_adapter_gives_the_runs_logits_and_pushes_with_a_card(finished, tmp_path, monkeypatch):
    peft = pytest.importorskip("peft")
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from training.finished import load_run

    directory, metrics = finished
    uploads = []
    monkeypatch.setattr("huggingface_hub.HfApi.create_repo", lambda self, repo_id, **kw: f"https://hub/{repo_id}")
    monkeypatch.setattr("huggingface_hub.HfApi.upload_folder", lambda self, **kw: uploads.append(kw))
    out = tmp_path / "exported"
    # the tiny backbone is random from its config: --adapter-only, since the test rebuilds its base below
    assert entry("export").main([str(directory), str(out), "--adapter-only", "--push-to-hub", "me/rte-lora"]) == 0
    assert uploads == [{"repo_id": "me/rte-lora", "folder_path": str(out), "commit_message": uploads[0]["commit_message"]}]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nbase_model:") and "library_name: peft" in card and "| accuracy |" in card

    ours = load_run(directory, ["device=cpu"])
    torch.manual_seed(0)  # the tiny backbone is random from its config, built as training built it
    tiny = HARNESS_ROOT / "assets" / "tiny-roberta"
    base = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(tiny, num_labels=2))
    loaded = peft.PeftModel.from_pretrained(base, str(out)).eval()
    ids = torch.randint(3, 100, (4, 12))
    with torch.no_grad():
        expected = ours.model(input_ids=ids).logits
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected, rtol=1e-5, atol=1e-5)


def test_merged_export_is_a_plain_model_with_the_runs_logits(finished, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from training.finished import load_run

    directory, _ = finished
    out = tmp_path / "merged"
    assert entry("export").main([str(directory), str(out), "--merged"]) == 0
    merged = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    ours = load_run(directory, ["device=cpu"])
    ids = torch.randint(3, 100, (4, 12))
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, ours.model(input_ids=ids).logits,
                                   rtol=1e-5, atol=1e-5)
    assert "library_name: transformers" in (out / "README.md").read_text()


def test_a_run_that_is_not_finished_is_a_clear_error(tmp_path, capsys):
    assert entry("evaluate").main([str(tmp_path)]) == 2
    assert "holds no finished run" in capsys.readouterr().err
