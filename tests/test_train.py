"""train.py end to end on the tiny model and the sample data (CPU): run directories, resume,
failure, errors, starting from MNLI, determinism, TensorBoard."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import adapters
import training.checkpoint
import training.loop
from training.config import HARNESS_ROOT, compose
from training.model import build_model, load_init_state
from training.run import run
from rundir import run_dir

METHODS = ("lora", "symlora", "delora", "b_only", "a_only", "head_only", "bitfit", "full")
TIMING = ("time_s", "examples_per_s")


def assert_complete(directory: Path, metrics: dict, task_files=()):
    assert metrics["status"] == "done", metrics["reason"]
    on_disk = json.loads((directory / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for name in ("config.yaml", "epochs.jsonl", "adapter.safetensors", "layer_norms.json"):
        assert (directory / name).stat().st_size > 0, name
    assert not (directory / "checkpoint").exists()  # resume state goes once the run is done
    epochs = [json.loads(line) for line in (directory / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == list(range(1, metrics["last_epoch"] + 1))
    assert metrics["best"] == epochs[metrics["best_epoch"] - 1]["validation"]
    for name in task_files:
        assert (directory / "predictions" / name).exists(), name
    assert metrics["trainable"]["with_head"] > metrics["trainable"]["adapter"] >= 0


@pytest.mark.parametrize("method", METHODS)
def test_every_adapter_trains_a_classification_task(tiny_run, method):
    cfg, overrides = tiny_run("task=rte", f"adapter={method}", "init_from=null")
    metrics = run(cfg, overrides)
    assert_complete(run_dir(cfg), metrics, ["validation.tsv", "RTE.tsv"])
    assert set(metrics["best"]) == {"accuracy"} and metrics["method"] == method


def test_regression_and_mnli(tiny_run):
    cfg, overrides = tiny_run("task=stsb", "init_from=null", "epochs=2")
    metrics = run(cfg, overrides)
    assert_complete(run_dir(cfg), metrics, ["STS-B.tsv"])
    assert set(metrics["best"]) == {"pearson", "spearman"}

    cfg, overrides = tiny_run("task=mnli")
    metrics = run(cfg, overrides)
    assert_complete(run_dir(cfg), metrics, ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"])
    assert set(metrics["best"]) == {"accuracy_matched", "accuracy_mismatched"}


def test_finished_run_is_skipped_unless_rerun(tiny_run):
    cfg, overrides = tiny_run("task=rte", "init_from=null")
    first = run(cfg, overrides)
    path = run_dir(cfg) / "metrics.json"
    stamp = path.stat().st_mtime_ns
    assert run(cfg, overrides) == first and path.stat().st_mtime_ns == stamp
    cfg, overrides = tiny_run("task=rte", "init_from=null", "rerun=true")
    run(cfg, overrides)
    assert path.stat().st_mtime_ns != stamp


def without_timing(record):
    if isinstance(record, dict):
        return {k: without_timing(v) for k, v in record.items() if k not in TIMING}
    return record


def test_interrupted_run_resumes_to_the_same_result(tiny_run, tmp_path, monkeypatch):
    overrides = ["task=rte", "init_from=null", "epochs=3", "model.dropout=0.1"]
    cfg, full_overrides = tiny_run(*overrides, f"results_dir={tmp_path / 'straight'}")
    straight = run(cfg, full_overrides)

    real_save = training.checkpoint.save

    def save_then_die(directory, model, optimizer, scheduler, epoch, *rest):
        real_save(directory, model, optimizer, scheduler, epoch, *rest)
        if epoch == 2:
            raise KeyboardInterrupt  # killed right after the second epoch's checkpoint

    cfg, full_overrides = tiny_run(*overrides, f"results_dir={tmp_path / 'resumed'}")
    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, full_overrides)
    assert (run_dir(cfg) / "checkpoint").exists() and not (run_dir(cfg) / "metrics.json").exists()
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    resumed = run(cfg, full_overrides)

    assert without_timing(resumed) == without_timing(straight)
    a, b = run_dir(compose([*full_overrides[:-1], f"results_dir={tmp_path / 'straight'}"])), run_dir(cfg)
    epochs = lambda d: [without_timing(json.loads(x)) for x in (d / "epochs.jsonl").read_text().splitlines()]  # noqa: E731
    assert epochs(a) == epochs(b)
    saved_a, saved_b = load_file(a / "adapter.safetensors"), load_file(b / "adapter.safetensors")
    assert saved_a.keys() == saved_b.keys()
    assert all(torch.equal(saved_a[k], saved_b[k]) for k in saved_a)  # (safetensors' header order varies)
    for f in (a / "predictions").iterdir():
        assert f.read_text() == (b / "predictions" / f.name).read_text()
    assert (a / "config.yaml").read_text().replace("straight", "X") == (b / "config.yaml").read_text().replace("resumed", "X")


def test_same_seed_gives_the_same_numbers(tiny_run, tmp_path):
    results = []
    for where in ("one", "two"):
        cfg, overrides = tiny_run("task=rte", "init_from=null", "model.dropout=0.1",
                                  f"results_dir={tmp_path / where}")
        results.append(without_timing(run(cfg, overrides)))
    assert results[0] == results[1]


def test_nan_loss_marks_the_run_failed(tiny_run, monkeypatch):
    monkeypatch.setattr(training.loop, "task_loss", lambda logits, labels: logits.sum() * math.nan)
    cfg, overrides = tiny_run("task=rte", "init_from=null")
    metrics = run(cfg, overrides)
    assert metrics["status"] == "failed" and "non-finite" in metrics["reason"]
    assert json.loads((run_dir(cfg) / "metrics.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("overrides, message", [
    (["task=nosuchtask"], "nosuchtask"),
    (["adapter=nosuchadapter"], "nosuchadapter"),
    (["task=rte", "init_from=null", "adapter=symlora", "adapter.targets=[dense]"], "square"),
    (["task=rte", "init_from=null", "data=glue_dir", "data.dir=/nonexistent/glue_data"], "/nonexistent/glue_data"),
    (["task=rte", "init_from=null", "adapter.rank=100000"], "rank"),
])
def test_bad_configuration_is_a_clear_error(tiny_run, overrides, message):
    with pytest.raises(Exception, match=message):
        cfg, full = tiny_run(*overrides)
        run(cfg, full)


def test_rte_starts_from_the_mnli_adapter(tiny_run):
    with pytest.raises(FileNotFoundError, match="MNLI"):
        run(*tiny_run("task=rte", "init_from=mnli"))
    mnli_cfg, overrides = tiny_run("task=mnli")
    run(mnli_cfg, overrides)
    cfg, overrides = tiny_run("task=rte", "init_from=mnli")
    metrics = run(cfg, overrides)
    assert metrics["status"] == "done"
    assert metrics["hyperparameters"]["init_from"] == str(run_dir(mnli_cfg))

    mnli_adapter = {k: v for k, v in load_file(run_dir(mnli_cfg) / "adapter.safetensors").items()
                    if not k.startswith(adapters.HEAD_PREFIX)}
    model = build_model(cfg, 2, load_init_state(run_dir(mnli_cfg)))
    started = adapters.adapter_state_dict(model)
    assert started.keys() == mnli_adapter.keys() and len(started) > 0
    for name, tensor in mnli_adapter.items():
        assert torch.equal(started[name], tensor), name
        assert tensor.abs().sum() > 0  # trained, so not the fresh zero init


def test_lora_of_lora_starts_from_the_mnli_lora(tiny_run):
    run(*tiny_run("task=mnli", "adapter=lora"))
    for method in ("lora_of_lora", "lora_head_only"):
        cfg, overrides = tiny_run("task=rte", f"adapter={method}", "init_from=mnli")
        metrics = run(cfg, overrides)
        assert metrics["status"] == "done", metrics["reason"]
        assert metrics["method"] == method and "task=mnli" not in metrics["hyperparameters"]["init_from"]
    assert metrics["trainable"]["adapter"] == 0  # lora_head_only: the MNLI LoRA stays frozen


def test_tensorboard_writes_event_files(tiny_run):
    cfg, overrides = tiny_run("task=rte", "init_from=null", "logger=tensorboard")
    run(cfg, overrides)
    assert list((run_dir(cfg) / "tensorboard").glob("events.out.tfevents.*"))


def test_command_line_entry(tmp_path):
    """What a user types: python train.py ... (Hydra parses the overrides)."""
    out = subprocess.run([sys.executable, "train.py", "model=tiny", "data=sample", "task=rte", "epochs=1",
                          "init_from=null", "max_seq_len=32", "device=cpu", f"results_dir={tmp_path}"],
                         cwd=HARNESS_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert len(list(tmp_path.glob("runs/rte/lora/*/seed=0/metrics.json"))) == 1
    assert not (HARNESS_ROOT / "outputs").exists()


def test_weight_decay_spares_biases_layernorms_and_symlora_lambda(tiny_run):
    from training.loop import make_optimizer
    cfg, _ = tiny_run("task=rte", "init_from=null", "adapter=symlora", "adapter.targets=[query,value]")
    model = build_model(cfg, 2)
    optimizer = make_optimizer(model, 1e-3, cfg.optim, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    plain = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert decayed and all(n.endswith(("Q", "Lambda", "weight")) for n in decayed)
    assert all(n.endswith(("bias", "lam")) for n in plain) and any(n.endswith("lam") for n in plain)
    assert decayed | plain == {n for n, p in model.named_parameters() if p.requires_grad}


def test_out_of_memory_names_batch_size_and_length(tiny_run, monkeypatch):
    import training.fit

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training.fit, "train_epoch", oom)
    cfg, overrides = tiny_run("task=rte", "init_from=null", "batch_size=16", "max_seq_len=32")
    metrics = run(cfg, overrides)
    assert metrics["status"] == "failed"
    assert "batch_size=16" in metrics["reason"] and "max_seq_len=32" in metrics["reason"]


def test_report_reads_a_real_run(tiny_run, tmp_path):
    """report.py on what train.py wrote: a table a newcomer can read."""
    cfg, overrides = tiny_run("task=rte", "init_from=null")
    run(cfg, overrides)
    out = subprocess.run([sys.executable, "report.py", f"results_dir={cfg.results_dir}"], cwd=HARNESS_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "| RTE" in out.stdout or "RTE |" in out.stdout
    assert "lora (r=8)" in out.stdout and "1 of 1" in out.stdout
    assert (Path(cfg.results_dir) / "tables" / "all.md").exists()


def test_length_grouped_batches_pad_less(tiny_run):
    from training.data import RunData
    from training.model import build_tokenizer
    from glue import get_task

    padding = {}
    for grouped in (False, True):
        cfg, _ = tiny_run("task=qqp", f"group_by_length={str(grouped).lower()}", "max_seq_len=128")
        data = RunData(cfg, get_task("qqp"), build_tokenizer(cfg))  # the sample's most varied lengths
        batches = list(data.train_loader(1, seed=0))
        assert sorted(i for b in batches for i in b["idx"].tolist()) == list(range(data.train_size))
        padding[grouped] = sum(int((b["attention_mask"] == 0).sum()) for b in batches)
        assert [b["idx"].tolist() for b in data.train_loader(1, seed=0)] == [b["idx"].tolist() for b in batches]
    assert padding[True] < padding[False]
