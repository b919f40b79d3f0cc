"""A run folder is never damaged by the harness: a finished run is never written over (a retrain
trains beside it), a resume on other data is refused, files follow the umask, no write follows a
link planted in the folder, a torn log line blocks nothing, a failed start leaves no folder, a
finished run in a read-only results folder is skipped, and a sweep whose every run failed says so
in its exit status. Tiny model, sample data, CPU."""
import errno
import json
import os
import shutil
from pathlib import Path

import pytest

import rundir
import training.checkpoint
import training.fit
import training.run
from glue.loading import SAMPLE_DIR
from rundir import read_run, run_dir
from training.config import compose
from training.records import run_records
from training.run import run

TINY = ["model=tiny", "data=sample", "device=cpu", "max_seq_len=32", "batch_size=16", "log_every=5",
        "task=rte", "init_from=null", "epochs=2"]
TIMING = ("time_s", "examples_per_s")


class Killed(BaseException):
    """Stands for kill -9: nothing of ours catches it."""


def kill(*args, **kwargs):
    raise Killed()


def without_timing(record):
    if isinstance(record, dict):
        return {k: without_timing(v) for k, v in record.items() if k not in TIMING}
    return record


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file of a run but those each invocation adds to (the lock, the history, the log)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name not in (".lock", "commands.jsonl", "train.log")
            and rundir.RETRAIN not in p.relative_to(directory).parts}


def stop_after_first_epoch(monkeypatch):
    """The run is killed right after its first epoch's checkpoint (undone by monkeypatch.undo)."""
    real_save = training.checkpoint.save

    def save_then_die(directory, model, optimizer, scheduler, epoch, *rest):
        real_save(directory, model, optimizer, scheduler, epoch, *rest)
        if epoch == 1:
            raise Killed()
    monkeypatch.setattr(training.checkpoint, "save", save_then_die)


def interrupted_run(tmp_path, monkeypatch, *overrides):
    """A run (`overrides` added) killed after its first epoch of two; returns its config."""
    cfg = compose([*TINY, f"results_dir={tmp_path / 'results'}", *overrides])
    with monkeypatch.context() as patch:
        stop_after_first_epoch(patch)
        with pytest.raises(Killed):
            run(cfg, [])
    return cfg


# --- a finished run is never written over ---------------------------------------------------------------

@pytest.mark.parametrize("point", ["training", "swap"])
def test_a_kill_during_a_retrain_leaves_a_whole_run(tmp_path, monkeypatch, point):
    cfg = compose([*TINY, f"results_dir={tmp_path}"])
    first = run(cfg, [])
    directory = run_dir(cfg)
    before = files_of(directory)
    retrain = directory / rundir.RETRAIN
    with monkeypatch.context() as patch:
        if point == "training":  # after both epochs, before the predictions: the adapter was rewritten
            patch.setattr(training.fit, "write_all_predictions", kill)
        else:  # in the middle of swapping the finished retrain in
            real_replace = os.replace
            patch.setattr(os, "replace", lambda a, b: kill() if Path(a).parent == retrain
                          and Path(b) == directory / "config.yaml" else real_replace(a, b))
        with pytest.raises(Killed):
            run(compose([*TINY, f"results_dir={tmp_path}", "rerun=true"]), [])

    if point == "training":
        assert files_of(directory) == before  # the finished run as it was, byte for byte
        assert run(cfg, []) == first          # still finished: skipped, the abandoned retrain removed
        assert not retrain.exists()
    else:
        retrained = json.loads((retrain / "metrics.json").read_text())
        assert read_run(directory).status == "unfinished"  # never the old metrics over new files
        again = run(cfg, [])                   # the next command completes the swap
        assert again == retrained and read_run(directory).metrics == retrained
        assert not retrain.exists() and without_timing(again) == without_timing(first)
        assert len(rundir.read_epochs(directory)) == 2 and (directory / "predictions").is_dir()


def test_a_failed_retrain_leaves_the_done_run(tmp_path, monkeypatch):
    cfg = compose([*TINY, f"results_dir={tmp_path}"])
    first = run(cfg, [])
    before = files_of(run_dir(cfg))

    def fail_every_member(pack, members, *args):
        for member in members:
            member.failure = "diverged"
            args[-1](member)
    monkeypatch.setattr(training.run, "fit", fail_every_member)
    run(compose([*TINY, f"results_dir={tmp_path}", "rerun=true"]), [])
    assert files_of(run_dir(cfg)) == before and read_run(run_dir(cfg)).metrics == first


# --- a resume only on the data it trained on ---------------------------------------------------------------

def test_a_resume_on_changed_data_is_refused_naming_the_file(tmp_path, monkeypatch):
    data = tmp_path / "glue"
    shutil.copytree(SAMPLE_DIR / "RTE", data / "RTE")
    overrides = ["data=glue_dir", f"data.dir={data}"]
    cfg = interrupted_run(tmp_path, monkeypatch, *overrides)
    train = data / "RTE" / "train.tsv"
    original = train.read_text()
    flipped = {"entailment": "not_entailment", "not_entailment": "entailment"}
    lines = original.splitlines()
    train.write_text("\n".join([lines[0]] + ["\t".join([*row.split("\t")[:-1], flipped[row.split("\t")[-1]]])
                                             for row in lines[1:]]) + "\n")
    with pytest.raises(rundir.RunDirError, match=f"{train} changed since .*checkpoint") as error:
        run(cfg, [])
    assert "rerun=true" in str(error.value)
    train.write_text(original)  # the same data again: it resumes and finishes
    resumed = run(cfg, [])
    assert resumed["status"] == "done" and len(rundir.read_epochs(run_dir(cfg))) == 2


def test_the_data_fingerprint_is_per_split_file(tmp_path):
    from training.data import RunData
    from training.model import build_tokenizer
    from glue import get_task

    cfg = compose([*TINY, f"results_dir={tmp_path}", "data=glue_dir", f"data.dir={SAMPLE_DIR}"])
    data = RunData(cfg, get_task("rte"), build_tokenizer(cfg))
    prints = training.checkpoint.data_fingerprint(data)
    train = SAMPLE_DIR / "RTE" / "train.tsv"
    import hashlib
    assert prints["train"] == {"file": str(train), "bytes": train.stat().st_size,
                               "sha256": hashlib.sha256(train.read_bytes()).hexdigest()}
    assert set(prints) == {"train", "validation", "test"}


def test_the_hub_data_is_known_by_its_fingerprint():
    from types import SimpleNamespace

    data = SimpleNamespace(task=SimpleNamespace(name="rte"), fingerprints={"rte": {"train": "a1b2c3"}},
                           record=lambda: {"train": {"file": "hf://datasets/nyu-mll/glue/rte"}})
    assert training.checkpoint.data_fingerprint(data) == {
        "train": {"file": "hf://datasets/nyu-mll/glue/rte", "fingerprint": "a1b2c3"}}
    other = {"train": {"file": "hf://datasets/nyu-mll/glue/rte", "fingerprint": "d4e5f6"}}
    with pytest.raises(rundir.RunDirError, match="hf://datasets/nyu-mll/glue/rte changed since .*a1b2c3"):
        training.checkpoint._check_data(Path("checkpoint/state.pt"), training.checkpoint.data_fingerprint(data),
                                        other)


# --- file modes ---------------------------------------------------------------------------------------------

def test_weights_checkpoints_and_the_cache_follow_the_umask(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        cfg = interrupted_run(tmp_path, monkeypatch)
    finally:
        os.umask(old)
    directory = run_dir(cfg)
    files = [directory / "adapter.safetensors", directory / "checkpoint" / "trainable.safetensors",
             *(p for p in (tmp_path / "results" / "cache").rglob("*") if p.is_file())]
    folders = [directory / "checkpoint", *(p for p in (tmp_path / "results" / "cache").rglob("*") if p.is_dir())]
    assert len(files) > 3 and len(folders) > 1
    assert {str(p): oct(p.stat().st_mode & 0o777) for p in files} == {str(p): "0o644" for p in files}
    assert {str(p): oct(p.stat().st_mode & 0o777) for p in folders} == {str(p): "0o755" for p in folders}


# --- links planted in a run folder ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["train.log", "commands.jsonl", "epochs.jsonl", "predictions", "adapter.safetensors"])
def test_a_link_planted_in_a_run_folder_is_named_and_never_followed(tmp_path, monkeypatch, name):
    cfg = interrupted_run(tmp_path, monkeypatch)
    directory = run_dir(cfg)
    outside = tmp_path / "outside"
    if name == "predictions":
        outside.mkdir()
        (outside / "validation.tsv").write_text("precious\n")
    else:
        outside.write_text("precious\n")
    path = directory / name
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    path.symlink_to(outside)
    with pytest.raises(rundir.RunDirError, match=f"{path} is a symbolic link"):
        with run_records([directory], ["train.py"], []):
            run(cfg, [])
    if name == "predictions":
        assert [p.name for p in outside.iterdir()] == ["validation.tsv"]
        assert (outside / "validation.tsv").read_text() == "precious\n"
    else:
        assert outside.read_text() == "precious\n"


def test_links_inside_the_written_folders_are_found_and_the_trackers_are_theirs(tmp_path):
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "RTE.tsv").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(rundir.RunDirError, match="predictions/RTE.tsv is a symbolic link"):
        rundir.refuse_links(tmp_path)
    (tmp_path / "predictions" / "RTE.tsv").unlink()
    (tmp_path / "wandb").mkdir()
    (tmp_path / "wandb" / "latest-run").symlink_to(tmp_path / "wandb")  # what W&B itself makes
    rundir.refuse_links(tmp_path)


def test_appends_refuse_a_link_made_while_running(tmp_path):
    (tmp_path / "outside").write_text("precious\n")
    (tmp_path / "epochs.jsonl").symlink_to(tmp_path / "outside")
    with pytest.raises(rundir.RunDirError, match="epochs.jsonl is a symbolic link"):
        rundir.append_epoch(tmp_path, {"epoch": 1})
    assert (tmp_path / "outside").read_text() == "precious\n"


# --- torn lines -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rerun", [False, True])
def test_a_torn_last_line_blocks_neither_resume_nor_rerun(tmp_path, monkeypatch, rerun):
    cfg = interrupted_run(tmp_path, monkeypatch)
    directory = run_dir(cfg)
    with (directory / "commands.jsonl").open("a") as f:
        f.write('{"id": "0123')  # a writer killed mid-line
    with (directory / "epochs.jsonl").open("a") as f:
        f.write('{"epoch": 2, "train_lo')
    again = compose([*TINY, f"results_dir={tmp_path / 'results'}", f"rerun={str(rerun).lower()}"])
    with run_records([directory], ["train.py"], []):
        metrics = run(again, [])
    assert metrics["status"] == "done" and [r["epoch"] for r in rundir.read_epochs(directory)] == [1, 2]
    lines = (directory / "commands.jsonl").read_text().splitlines()
    assert lines[0] == '{"id": "0123' and len(lines) == 2 and json.loads(lines[1])["argv"][-1] == "train.py"


# --- failed starts leave nothing --------------------------------------------------------------------------

def break_model_building(monkeypatch, broken) -> None:
    """Both engines build a run's model through training/model.py build_model (the reference engine
    in training/run.py, the fused one in training/pack.py build_pack)."""
    import training.model
    monkeypatch.setattr(training.run, "build_model", broken)
    monkeypatch.setattr(training.model, "build_model", broken)


def test_a_failed_start_leaves_no_folder(tmp_path, monkeypatch):
    cfg = compose([*TINY, f"results_dir={tmp_path}"])

    def broken(*args, **kwargs):
        raise OSError("no such model")
    break_model_building(monkeypatch, broken)
    with pytest.raises(OSError, match="no such model"):
        with run_records([run_dir(cfg)], ["train.py"], []):
            run(cfg, [])
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_a_failed_resume_keeps_the_run(tmp_path, monkeypatch):
    cfg = interrupted_run(tmp_path, monkeypatch)
    before = files_of(run_dir(cfg))
    break_model_building(monkeypatch, lambda *a, **k: (_ for _ in ()).throw(OSError("gone")))
    with pytest.raises(OSError):
        run(cfg, [])
    assert files_of(run_dir(cfg)) == before


# --- read-only results -------------------------------------------------------------------------------------

def test_a_finished_run_is_skipped_without_its_lock(tmp_path, monkeypatch):
    cfg = compose([*TINY, "epochs=1", f"results_dir={tmp_path}"])
    first = run(cfg, [])

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self.path))
    monkeypatch.setattr(rundir.RunLock, "acquire", read_only)
    assert run(cfg, []) == first


# --- "finished" decided once -------------------------------------------------------------------------------

def test_every_reader_agrees_a_damaged_run_is_not_finished(tmp_path):
    from sweeping.identity import status
    from training.finished import load_run

    directory = tmp_path / "runs" / "rte" / "lora" / "s" / "seed=0"
    rundir.write_config(directory, {"task": {"name": "rte"}})
    (directory / "metrics.json").write_text('{"status": "do')
    assert not rundir.is_finished(directory) and read_run(directory).status == "corrupt"
    assert status(directory).state == "missing"
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        load_run(directory)


# --- the sweep's exit status -----------------------------------------------------------------------------------

def test_a_sweep_whose_every_run_failed_exits_1(tmp_path, monkeypatch, capsys):
    from sweeping.cli import exit_status, run_sweep

    def crash(jobs):
        raise ValueError("broken data")
    monkeypatch.setattr(training.run, "run_pack", crash)
    summary = run_sweep(["grid=smoke", f"results_dir={tmp_path}", "grid.methods=[lora]", "grid.lr=[0.003]",
                         "grid.seeds=[0]"])
    assert summary["failed"] == summary["ran"] == 1
    assert exit_status(summary) == 1 and "all 1 runs it launched failed" in capsys.readouterr().err
    assert exit_status({**summary, "failed": 0}) == 0 and exit_status({"ran": 0, "failed": 0}) == 0
