"""The run record (rundir/) and the promises built on it: one seed drives everything random, a kill
at any point of finishing loses nothing, one process trains a run, state is tied to its config, bad
files and bad values get clear errors. Tiny model, sample data, CPU."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import rundir
import training.checkpoint
import training.fit
import training.run
from rundir import read_run, run_dir
from sweeping.identity import quote
from tests.conftest import last_wins
from training.config import HARNESS_ROOT, compose
from training.run import run
from training.schema import ConfigError, check_task_overrides, validate

TIMING = ("time_s", "examples_per_s")
TINY = ["model=tiny", "data=sample", "device=cpu", "max_seq_len=32", "batch_size=16", "log_every=5",
        "task=rte", "init_from=null"]


def without_timing(record):
    if isinstance(record, dict):
        return {k: without_timing(v) for k, v in record.items() if k not in TIMING}
    return record


def losses(directory: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (directory / "epochs.jsonl").read_text().splitlines()]


def train_py(*args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *last_wins(args)], cwd=HARNESS_ROOT, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


# --- the files -------------------------------------------------------------------------------------

def test_files_are_whole_and_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        rundir.write_metrics(tmp_path, {"status": "done"})
    finally:
        os.umask(old)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644  # a teammate can read it
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]      # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    rundir.write_metrics(tmp_path, {"status": "done", "n": 1})

    def disk_full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        rundir.write_metrics(tmp_path, {"status": "done", "n": 2})
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_the_reader_types_every_state(tmp_path):
    assert read_run(tmp_path / "none").status == "missing"
    rundir.write_config(tmp_path, {"task": {"name": "rte"}, "adapter": {"name": "lora", "rank": 8}, "seed": 3,
                                   "lr": 0.1, "experiment": "symlora_paper"})
    record = read_run(tmp_path)
    assert (record.status, record.task, record.method, record.seed, record.rank, record.lr, record.experiment) \
        == ("unfinished", "rte", "lora", 3, 8, 0.1, "symlora_paper")
    rundir.write_metrics(tmp_path, {"status": "done", "main_metric": "accuracy", "best": {"accuracy": 0.7},
                                    "last": {"accuracy": 0.6}, "experiment": "lora_paper", "grid": "g"})
    record = read_run(tmp_path)
    assert (record.status, record.score(), record.score("last_epoch"), record.experiment, record.grid) == \
        ("done", 0.7, 0.6, "lora_paper", "g")
    (tmp_path / "metrics.json").write_text('{"status": "do')
    record = read_run(tmp_path)
    assert record.status == "corrupt" and str(tmp_path / "metrics.json") in record.reason


def test_best_mean_rule():
    assert rundir.best_mean({"a": [0.5, 0.7], "b": [0.6, None, float("nan")], "c": []}) == ("a", 0.6, 2)
    assert rundir.best_mean({"a": [0.6], "b": [0.6, 0.6]})[0] == "b"   # a tie: more seeds
    assert rundir.best_mean({"a": [0.6], "b": [0.6]})[0] == "a"        # then the earlier
    assert rundir.best_mean({"a": [None]}) is None


def test_a_second_lock_waits_for_the_first(tmp_path):
    order = []
    first = rundir.RunLock(tmp_path)
    first.acquire()

    def second():
        with rundir.RunLock(tmp_path):
            order.append("second")
    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    order.append("first done")
    first.release()
    thread.join(10)
    assert order == ["first done", "second"]


def test_the_lock_file_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(victim)
    with pytest.raises(rundir.RunDirError, match=r"run/\.lock is a symbolic link"):
        rundir.RunLock(tmp_path / "run").acquire()
    assert victim.read_text() == "precious"


# --- options checked before anything is written ----------------------------------------------------

@pytest.mark.parametrize("override, key", [("lr=abc", "lr"), ("epochs=0", "epochs"), ("batch_size=0", "batch_size"),
                                           ("device=gpu", "device"), ("logger=nosuch", "logger"),
                                           ("precision=fp16", "precision"), ("rerun=flase", "rerun"),
                                           ("model.dropout=1.5", "model.dropout")])
def test_bad_values_fail_before_any_folder_exists(tmp_path, override, key):
    cfg = compose([*TINY, f"results_dir={tmp_path}", override])
    with pytest.raises(ConfigError, match=rf"(^|; ){key}="):
        run(cfg, [])
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


@pytest.mark.parametrize("override", ["task.lr=0.1", "task.epochs=2", "task.batch_size=4"])
def test_a_task_override_a_preset_shadows_is_refused(tmp_path, override):
    """experiment=quickstart sets lr, epochs and batch_size itself: task.lr=0.1 would train at 3e-3."""
    overrides = ["experiment=quickstart", f"results_dir={tmp_path}", override]
    name, value = override.removeprefix("task.").split("=")
    with pytest.raises(ConfigError, match=rf"{override}: has no effect.*override {name}={value} instead"):
        run(compose(overrides), overrides)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    check_task_overrides(compose(["task=sst2", override]), [override])  # where lr reads the task file: fine


def test_every_shipped_preset_is_valid():
    for path in sorted((HARNESS_ROOT / "configs" / "experiment").glob("*.yaml")):
        cfg = compose([f"experiment={path.stem}"])
        validate(cfg)
        assert cfg.experiment == path.stem  # the preset names itself: the run's protocol


def test_command_line_error_is_one_clear_line(tmp_path):
    tiny = [a for a in TINY if a != "device=cpu"]  # a key given twice with two values is refused first
    out = train_py(*tiny, f"results_dir={tmp_path / 'results'}", "epochs=0", "device=gpu")
    assert out.returncode != 0
    assert "epochs=0: expected an integer ≥ 1" in out.stderr and "device='gpu'" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "results").exists()


# --- the record --------------------------------------------------------------------------------------

def test_metrics_record_the_protocol_and_the_whole_setting(tmp_path):
    cfg = compose(["experiment=quickstart", "epochs=1", "max_seq_len=32", f"results_dir={tmp_path}"])
    metrics = run(cfg, ["experiment=quickstart"])
    assert metrics["experiment"] == "quickstart" and metrics["grid"] is None
    assert metrics["config_hash"] == rundir.config_hash(cfg) and metrics["setting"].endswith(metrics["config_hash"][:8])
    assert metrics["model"] == "assets/tiny-roberta" and len(metrics["model_identity"]["config_sha256"]) == 64
    assert metrics["adapter"] == {"name": "lora", "rank": 8, "alpha": 16, "targets": ["query", "value"],
                                  "dropout": 0.0, "options": {}}
    assert metrics["hyperparameters"]["effective_batch"] == 16 and metrics["precision"] == "fp32"
    assert read_run(run_dir(cfg)).experiment == "quickstart"


# --- one seed drives everything random ----------------------------------------------------------------

def test_seed_drives_dropout_whatever_ran_before(tmp_path):
    """In one process (a multirun): seed 0 after seed 1 equals seed 0 alone; seeds differ."""
    dropout = [*TINY, "model.dropout=0.1", "epochs=2"]
    alone = compose([*dropout, f"results_dir={tmp_path / 'alone'}", "seed=0"])
    run(alone, [])
    for seed in (1, 0):
        run(compose([*dropout, f"results_dir={tmp_path / 'after'}", f"seed={seed}"]), [])
    after = compose([*dropout, f"results_dir={tmp_path / 'after'}", "seed=0"])
    assert losses(run_dir(after)) == losses(run_dir(alone))
    other = compose([*dropout, f"results_dir={tmp_path / 'after'}", "seed=1"])
    assert losses(run_dir(other)) != losses(run_dir(alone))


def test_seed_in_a_hydra_multirun_equals_a_fresh_process(tmp_path):
    args = [*TINY, "model.dropout=0.1", "epochs=2"]
    multi = train_py("-m", *args, f"results_dir={tmp_path / 'multi'}", "seed=1,0")
    single = train_py(*args, f"results_dir={tmp_path / 'single'}", "seed=0")
    assert multi.returncode == 0 and single.returncode == 0, multi.stderr + single.stderr
    seed0 = lambda root: losses(next((root / "runs").rglob("seed=0")))  # noqa: E731
    assert seed0(tmp_path / "multi") == seed0(tmp_path / "single")
    assert losses(next((tmp_path / "multi" / "runs").rglob("seed=1"))) != seed0(tmp_path / "single")


# --- finishing and interruptions lose at most the epoch in progress ----------------------------------

class Killed(BaseException):
    """Stands for kill -9: nothing of ours catches it."""


def kill(*args, **kwargs):
    raise Killed()


@pytest.mark.parametrize("point", ["predictions", "metrics_rename", "checkpoint_cleanup"])
def test_a_kill_while_finishing_loses_nothing(tmp_path, monkeypatch, point):
    overrides = [*TINY, "epochs=2", "model.dropout=0.1"]
    straight = run(compose([*overrides, f"results_dir={tmp_path / 'straight'}"]), [])
    cfg = compose([*overrides, f"results_dir={tmp_path / 'killed'}"])
    with monkeypatch.context() as patch:
        if point == "predictions":
            patch.setattr(training.fit, "write_all_predictions", kill)
        elif point == "metrics_rename":
            real_replace = os.replace
            patch.setattr(os, "replace", lambda a, b: kill() if str(b).endswith("metrics.json") else real_replace(a, b))
        else:
            patch.setattr(training.checkpoint, "remove", kill)
        with pytest.raises(Killed):
            run(cfg, [])

    trained = []
    real_train_epoch = training.fit.train_epoch
    monkeypatch.setattr(training.fit, "train_epoch", lambda *a, **k: trained.append(1) or real_train_epoch(*a, **k))
    again = run(cfg, [])
    assert trained == []                      # no epoch trained twice
    assert without_timing(again) == without_timing(straight)
    directory = run_dir(cfg)
    assert not list(directory.glob(".tmp-*")) and not (directory / "checkpoint").exists()
    assert len(losses(directory)) == 2


def test_damaged_checkpoint_falls_back_to_the_older_one(tmp_path, monkeypatch, caplog):
    overrides = [*TINY, "epochs=3", "model.dropout=0.1"]
    straight = run(compose([*overrides, f"results_dir={tmp_path / 'straight'}"]), [])
    cfg = compose([*overrides, f"results_dir={tmp_path / 'damaged'}"])
    real_save = training.checkpoint.save

    def save_then_die(directory, model, optimizer, scheduler, epoch, *rest):
        real_save(directory, model, optimizer, scheduler, epoch, *rest)
        if epoch == 2:
            raise Killed()
    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    with pytest.raises(Killed):
        run(cfg, [])
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    state = run_dir(cfg) / "checkpoint" / "state.pt"
    state.write_bytes(state.read_bytes()[:100])  # truncated
    resumed = run(cfg, [])
    assert str(state) in caplog.text
    assert without_timing(resumed) == without_timing(straight)


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file of a run but those each invocation adds to (the lock, the history, the log)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name not in (".lock", "commands.jsonl", "train.log")}


@pytest.mark.parametrize("damaged, damage", [("metrics.json", None), ("config.yaml", "task: [unclosed")])
def test_a_damaged_finished_run_is_named_and_left_as_it_is(tmp_path, damaged, damage):
    cfg = compose([*TINY, "epochs=2", f"results_dir={tmp_path}"])
    first = run(cfg, [])
    path = run_dir(cfg) / damaged
    path.write_text(damage or path.read_text()[:40])  # a truncated copy, a bad edit
    before = files_of(run_dir(cfg))
    with pytest.raises(rundir.RunDirError, match=re.escape(str(path))):
        run(cfg, [])
    assert files_of(run_dir(cfg)) == before  # nothing renamed, nothing trained over
    rerun = run(compose([*TINY, "epochs=2", f"results_dir={tmp_path}", "rerun=true"]), [])
    assert without_timing(rerun) == without_timing(first)
    assert rundir.read_run(run_dir(cfg)).status == "done" and not (run_dir(cfg) / rundir.RETRAIN).exists()
    assert not (run_dir(cfg) / "metrics.json.corrupt").exists()


def test_an_unfinished_run_with_a_damaged_config_is_named(tmp_path):
    cfg = compose([*TINY, "epochs=2", f"results_dir={tmp_path}"])
    run(cfg, [])
    (run_dir(cfg) / "metrics.json").unlink()
    (run_dir(cfg) / "config.yaml").write_text("task: [unclosed")
    with pytest.raises(rundir.RunDirError, match="config.yaml"):
        run(cfg, [])


def test_sigterm_stops_the_run_and_it_resumes(tmp_path):
    args = [*TINY, "epochs=40", "max_seq_len=64", f"results_dir={tmp_path}"]
    process = subprocess.Popen([sys.executable, "train.py", *last_wins(args)], cwd=HARNESS_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = None
    for _ in range(1200):  # once the first epoch's checkpoint is there
        state = next(tmp_path.rglob("checkpoint/state.pt"), None)
        if state is not None or process.poll() is not None:
            break
        time.sleep(0.1)
    assert state is not None, process.communicate()
    epochs = state.parent.parent / "epochs.jsonl"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "resumes from the last finished epoch" in out + err and not (epochs.parent / "metrics.json").exists()
    assert (epochs.parent / "checkpoint").exists()
    done = train_py(*args, "epochs=40")
    assert done.returncode == 0, done.stderr
    assert [json.loads(x)["epoch"] for x in epochs.read_text().splitlines()] == list(range(1, 41))


# --- one process per run -------------------------------------------------------------------------------

def test_two_processes_train_a_run_once(tmp_path):
    args = [*TINY, "epochs=3", f"results_dir={tmp_path}"]
    processes = [subprocess.Popen([sys.executable, "train.py", *args], cwd=HARNESS_ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = ["".join(p.communicate(timeout=300)) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    epochs = next(tmp_path.rglob("epochs.jsonl"))
    assert [json.loads(x)["epoch"] for x in epochs.read_text().splitlines()] == [1, 2, 3]
    assert sum("is finished" in e for e in errors) == 1  # the other waited, then skipped it


# --- state tied to its configuration -------------------------------------------------------------------

def test_resume_refuses_another_configuration(tmp_path, monkeypatch):
    cfg = compose([*TINY, "epochs=2", f"results_dir={tmp_path}"])
    real_save = training.checkpoint.save
    monkeypatch.setattr(training.checkpoint, "save", lambda *a: real_save(*a) or kill())
    with pytest.raises(Killed):
        run(cfg, [])
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    config = run_dir(cfg) / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.0005", "lr: 0.003"))
    with pytest.raises(ValueError, match=r"lr is 0\.003 there, 0\.0005 now") as error:
        run(cfg, [])
    assert str(run_dir(cfg)) in str(error.value)

    config.write_text(config.read_text().replace("lr: 0.003", "lr: 0.0005"))
    state_path = run_dir(cfg) / "checkpoint" / "state.pt"
    state = torch.load(state_path, weights_only=True)
    torch.save({**state, "config_hash": "0" * 64}, state_path)
    with pytest.raises(ValueError, match="another configuration") as error:
        run(cfg, [])
    assert str(run_dir(cfg)) in str(error.value)


@pytest.mark.parametrize("overrides, field", [(["adapter=b_only"], "adapter.name is 'lora' there, 'b_only' here"),
                                              (["adapter.alpha=16"], "adapter.alpha is 8 there, 16 here"),
                                              (["model.random_init=false"], "model.random_init")])
def test_init_from_refuses_what_does_not_match(tmp_path, overrides, field):
    mnli = compose([*TINY, "task=mnli", "epochs=1", f"results_dir={tmp_path}"])
    run(mnli, [])
    cfg = compose([*TINY, f"results_dir={tmp_path}", f"init_from={quote(str(run_dir(mnli)))}", *overrides])
    with pytest.raises(ValueError, match=field) as error:
        run(cfg, [])
    assert str(run_dir(mnli)) in str(error.value)


def test_gpu_locks_live_in_a_private_folder_and_follow_no_link(tmp_path, monkeypatch):
    from sweeping.job import claim_gpu, lock_dir
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    private = lock_dir()
    assert private.parent == tmp_path and private.stat().st_mode & 0o777 == 0o700
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (private / "gpu0.lock").symlink_to(victim)
    with pytest.raises(OSError):
        with claim_gpu([0], private):
            pass
    assert victim.read_text() == "precious"
    private.chmod(0o777)  # opened to others: refused
    with pytest.raises(PermissionError, match="private"):
        lock_dir()
