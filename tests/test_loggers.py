"""Experiment trackers on one step axis (TensorBoard with hyperparameters, W&B offline, MLflow to a
file store), and the terminal bar."""
import json
import os
import time
from pathlib import Path

import pytest

from training.progress import Progress
from training.run import run
from rundir import run_dir

EPOCHS = 2


def steps_per_epoch(directory: Path) -> int:
    metrics = json.loads((directory / "metrics.json").read_text())
    return -(-metrics["train_examples"] // metrics["hyperparameters"]["batch_size"])


def test_tensorboard_has_one_step_axis_and_the_hyperparameters(tiny_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg, overrides = tiny_run("task=rte", "init_from=null", "logger=tensorboard", f"epochs={EPOCHS}")
    run(cfg, overrides)
    events = EventAccumulator(str(run_dir(cfg) / "tensorboard"))
    events.Reload()
    steps = steps_per_epoch(run_dir(cfg))
    assert [e.step for e in events.Scalars("validation/accuracy")] == [steps * e for e in range(1, EPOCHS + 1)]
    train_steps = [e.step for e in events.Scalars("train/loss")]
    assert train_steps[-1] == EPOCHS * steps and train_steps == sorted(train_steps)  # the same axis
    content = events.PluginTagToContent("hparams")
    start = next(plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info for c in content.values()
                 if plugin_data_pb2.HParamsPluginData.FromString(c).HasField("session_start_info"))
    assert start.hparams["lr"].number_value == cfg.lr and start.hparams["method"].string_value == "lora"


def test_wandb_offline_writes_its_run_folder(tiny_run, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg, overrides = tiny_run("task=rte", "init_from=null", "logger=wandb", f"epochs={EPOCHS}")
    assert run(cfg, overrides)["status"] == "done"
    folders = list((run_dir(cfg) / "wandb").glob("offline-run-*"))
    [record] = folders[0].glob("run-*.wandb")  # what `wandb sync` uploads; its records are protobuf
    data = record.read_bytes()
    assert b"validation/accuracy" in data and b"train/loss" in data and b"max_seq_len" in data


def test_mlflow_logs_params_and_metrics_on_the_step_axis(tiny_run, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 prefers a database; a folder is enough here
    cfg, overrides = tiny_run("task=rte", "init_from=null", "logger=mlflow", f"epochs={EPOCHS}")
    run(cfg, overrides)
    client = MlflowClient()
    [found] = client.search_runs([client.get_experiment_by_name("glue-adapters").experiment_id])
    assert found.info.status == "FINISHED" and float(found.data.params["lr"]) == cfg.lr
    steps = steps_per_epoch(run_dir(cfg))
    history = client.get_metric_history(found.info.run_id, "validation/accuracy")
    assert sorted(m.step for m in history) == [steps * e for e in range(1, EPOCHS + 1)]


def test_mlflow_without_a_tracking_uri_writes_a_local_store_in_the_results_folder(tiny_run, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")  # recorded, so that what the harness sets is undone
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    cfg, overrides = tiny_run("task=rte", "init_from=null", "logger=mlflow", "epochs=1")
    run(cfg, overrides)
    store = Path(cfg.results_dir) / "mlruns"
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    [found] = client.search_runs([client.get_experiment_by_name("glue-adapters").experiment_id])
    assert found.info.status == "FINISHED" and found.data.tags["run_directory"] == str(run_dir(cfg))


def test_the_bar_moves_every_step_on_a_terminal_and_is_off_elsewhere(monkeypatch):
    progress = Progress("rte/lora", steps_per_epoch=10)
    progress.on_terminal = True
    progress.start_epoch(1, 3)
    batches = iter(progress.track(range(10)))
    for _ in range(4):
        next(batches)
        time.sleep(0.11)  # past tqdm's own redraw interval (0.1 s)
    next(batches)
    assert progress.bar.n == 4  # the batches finished so far: redrawn each step, not every log_every
    progress.close()
    progress.on_terminal = False
    loader = [1, 2]
    assert progress.track(loader) is loader


def test_unknown_logger_is_a_clear_error():
    from training.loggers import make_logger
    with pytest.raises(ValueError, match="logger=wandbb.*tensorboard, wandb, mlflow"):
        make_logger("wandbb", Path(os.devnull), "x", {})
