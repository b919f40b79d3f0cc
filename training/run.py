"""Runs, start to finish: check the configuration, choose the engine (training/engine.py), build data
and model, train (resuming when a checkpoint is there), and leave the run directory of
docs/run_directory.md behind. Several runs that differ only in seed, learning rate or weight decay
train as one pack on the fused engine (training/pack.py), one after another on the reference engine
(training/reference.py)."""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import platform
import random
import shlex
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import adapters
import rundir
from adapters import peft_method
from glue import get_task
from training import checkpoint, engine
from training.config import compose, resolved
from training.data import RunData
from training.fit import fit, schedule_steps
from training.loop import set_precision
from training.model import FROM_LORA, build_model, build_tokenizer, load_init_state, model_source
from training.pack import Member, build_pack
from training.reference import Solo
from training.pack_rules import check_packable
from training.schema import check_task_overrides, validate

log = logging.getLogger("train")
HARNESS_VERSION = "0.1.0"


def run(cfg: DictConfig, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Train the run `cfg` describes (skipped when finished, unless rerun=true); returns its metrics.
    `overrides` are the command-line overrides it was composed from (used to find its MNLI run)."""
    return run_pack([(cfg, overrides)])[0]


class Interrupted(BaseException):
    """SIGTERM (SLURM preemption, a scheduler's kill) arrived: stop now; the checkpoint of the last
    finished epoch stays, and the same command resumes from it. A BaseException so that no
    `except Exception` on the way mistakes it for the run's own failure."""


def run_pack(jobs: list[tuple[DictConfig, list[str] | tuple[str, ...]]]) -> list[dict]:
    """Train the runs `jobs` (config, overrides) describe; returns each one's metrics. On the fused
    engine they train as one pack; on the reference engine one after another, each exactly as alone."""
    for cfg, overrides in jobs:
        check_task_overrides(cfg, overrides)
    cfgs = [resolved(cfg) for cfg, _ in jobs]
    for cfg in cfgs:  # every option checked before anything is written
        validate(cfg)
    check_packable(cfgs)
    choice = engine.choose(cfgs[0], pick_device(cfgs[0].device))  # engine=fused where not allowed: refused here
    task = get_task(cfgs[0].task.name)
    directories = [rundir.run_dir(cfg) for cfg in cfgs]
    starts = [find_init_run(cfg, overrides) for cfg, (_, overrides) in zip(cfgs, jobs)]
    if choice.reason:  # (logged once the runs are sure to start: a log line lands in their train.log)
        log.info("%s", choice.reason)
    together = choice.engine == "fused" and choice.shared
    if not together and len(cfgs) > 1:
        log.info("the %d runs of the pack train one after another, each exactly as alone", len(cfgs))
    unsettled = [d for cfg, d in zip(cfgs, directories) if not settled(cfg, d)]  # no lock for a finished run
    with rundir.lock_runs(unsettled), stop_on_sigterm():  # one process per run, whatever launched it
        places = [needs_training(cfg, d) if d in unsettled else None for cfg, d in zip(cfgs, directories)]
        todo = [i for i, place in enumerate(places) if place is not None]
        groups = ([todo] if together else [[i] for i in todo]) if todo else []
        if groups:
            try:
                for group in groups:
                    train_members(cfgs, places, starts, group, task, choice)
            except Interrupted:
                log.warning("SIGTERM: stopped %s; the same command resumes from the last finished epoch",
                            ", ".join(str(directories[i]) for i in todo))
                raise SystemExit(128 + signal.SIGTERM) from None
    return [rundir.read_run(directory).metrics for directory in directories]


def settled(cfg: DictConfig, directory: Path) -> bool:
    """A finished run with nothing left to tidy: skipped without taking its lock, which needs writing
    (a finished run in a read-only results folder is skipped, not an error)."""
    if cfg.rerun or not rundir.is_finished(directory):
        return False
    if any(directory.glob(f"{checkpoint.NAME}*")) or any(directory.glob(".tmp-*")) or (directory / rundir.RETRAIN).exists():
        return False  # a kill between metrics.json and the cleanup: needs_training tidies, under the lock
    log.info("%s is finished (%s): skipped; rerun=true runs it again", directory, rundir.read_run(directory).status)
    return True


def needs_training(cfg: DictConfig, directory: Path) -> Path | None:
    """Where the run in `directory` (locked by us) trains: in `directory`, in `<directory>/.retrain/`
    (rerun=true over a run's files: they stay until the retrain finishes, rundir/retrain.py), or
    nowhere (None: finished, skipped). A finished run's files are never written over: a damaged one
    is a `rundir.RunDirError` naming the file, as is a link planted in the folder."""
    if directory.is_dir():
        rundir.refuse_links(directory)
        rundir.recover(directory)  # a swap a kill interrupted is completed; an abandoned retrain goes
        rundir.clean_temporary_files(directory)
    if cfg.rerun:
        return rundir.start_retrain(directory) if rundir.has_run_files(directory) else directory
    record = rundir.read_run(directory)
    if record.finished:
        log.info("%s is finished (%s): skipped; rerun=true runs it again", directory, record.status)
        checkpoint.remove(directory)  # left by a kill between metrics.json and its cleanup
        return None
    if record.status == "corrupt":
        raise rundir.RunDirError(f"{record.reason}; its files are left as they are: rerun=true trains the "
                                 "run again beside them and replaces them once it finishes")
    if record.config:  # an interrupted run: it resumes only under the configuration it started with
        changed = rundir.differences(rundir.identity(record.config), rundir.identity(cfg))
        if changed:
            raise rundir.RunDirError(
                f"{directory} holds a run of another configuration: "
                + "; ".join(f"{key} is {old!r} there, {new!r} now" for key, old, new in changed)
                + "; rerun=true replaces it")
    return directory


def train_members(cfgs, directories, starts, todo, task, choice: engine.Choice) -> None:
    """Train the runs `todo` (indices into cfgs) together: a pack on the fused engine, one run on the
    reference engine."""
    device = pick_device(cfgs[0].device)
    precision = set_precision(device, cfgs[0].precision)
    data = RunData(cfgs[0], task, tokenizer := build_tokenizer(cfgs[0]))
    init_states = [load_init_state(starts[i]) if starts[i] else None for i in todo]
    if choice.engine == "fused":
        trainer, built = build_pack([cfgs[i] for i in todo], [directories[i] for i in todo], task.num_labels,
                                    device, init_states)
    else:
        (i,), (init_state,) = todo, init_states
        _, total_steps = schedule_steps(data, cfgs[i])  # a method with a schedule of its own: AdaLoRA's
        trainer = Solo(build_model(cfgs[i], task.num_labels, init_state, total_steps=total_steps).to(device))
        model = trainer.model
        built = [Member(cfgs[i], directories[i], dict(adapters.adapter_layers(model)), adapters.find_head(model)[1])]
    members = dict(zip(todo, built))
    for i, member in members.items():
        member.info = describe_run(member.cfg, task, adapters.count_trainable(trainer.use(member)), starts[i],
                                   data.train_size, device, trainer.model.config, precision, data.record(),
                                   choice)
        if peft_method.is_peft(trainer.use(member)):  # the PEFT method and its full config
            member.info.update(peft_method.record(trainer.use(member)))
    for member in members.values():
        rundir.write_config(member.directory, OmegaConf.to_container(member.cfg))

    # Runs resumed from different epochs cannot share steps: each such group trains on its own.
    by_epoch = lambda i: checkpoint.saved_epoch(members[i].directory)  # noqa: E731
    for _, group in itertools.groupby(sorted(members, key=by_epoch), key=by_epoch):
        group = [members[i] for i in group]
        started = time.perf_counter()
        seed_everything(group[0].cfg.seed)  # anything random without a stream of its own
        try:
            fit(trainer, group, data, task, device, tokenizer.pad_token_id, finish)
        except torch.cuda.OutOfMemoryError as error:
            for member in group:
                runs = f" × {len(group)} packed runs" if len(group) > 1 else ""
                member.failure = (f"CUDA out of memory at batch_size={member.cfg.batch_size}{runs}, "
                                  f"max_seq_len={member.cfg.max_seq_len}: lower either "
                                  f"({str(error).splitlines()[0]})")
        for member in group:
            member.info["time_s"] = time.perf_counter() - started
            finish(member)


@contextlib.contextmanager
def stop_on_sigterm():
    """Turn SIGTERM into `Interrupted` while runs train. Left alone where someone else handles it
    (submitit installs its own handlers and requeues the job) or off the main thread."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)):
        yield
        return

    def interrupt(signum, frame):
        raise Interrupted()
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def seed_everything(seed: int) -> None:
    """One seed drives everything random in a run that has no seeded stream of its own: the reference
    engine's dropout (Transformers' nn.Dropout modules draw from torch's generator; the fused engine's
    keyed dropout has its own streams, training/streams.py). Seeded at the start of each run, after its
    model is built, so a run in a multirun does not depend
    on what ran before it (a resumed run then restores the RNG state of its checkpoint)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every device's default generator


def finish(member: Member) -> None:
    """Write metrics.json (last, atomically) unless already written; only then does the resume state
    go, so that a kill at any point here loses nothing: before the write the run resumes from its last
    checkpoint (no epoch to train, only the predictions to write), after it the run is finished."""
    if member.finished:
        return
    member.finished = True
    metrics = dict(member.info)
    if member.failure is not None:
        metrics.update(status="failed", reason=member.failure)
    else:
        history = member.history
        seen = sum(r["examples_per_s"] * r["time_s"] for r in history)
        metrics.update(best_epoch=member.best["epoch"], best=member.best["validation"],
                       last_epoch=history[-1]["epoch"], last=history[-1]["validation"],
                       examples_per_s=seen / max(sum(r["time_s"] for r in history), 1e-9))
    rundir.write_metrics(member.directory, metrics)
    checkpoint.remove(member.directory)
    where = member.directory
    if rundir.is_retrain(where):  # rerun=true: only now does it replace the finished run
        rundir.finish_retrain(where)
        where = where.parent
    log.info("%s: %s%s", where, metrics["status"],
             f" ({metrics['reason']})" if metrics["reason"] else
             f", best epoch {metrics['best_epoch']}: {metrics['best']}")


def describe_run(cfg: DictConfig, task, counts: dict, init_directory: Path | None, train_size: int,
                 device, model_config, precision: str, data_record: dict,
                 choice: engine.Choice | None = None) -> dict:
    """The part of metrics.json known before training: enough to rebuild the run and to place it in
    a table (docs/run_directory.md)."""
    plain = OmegaConf.to_container(cfg)
    accumulation = cfg.grad_accumulation
    return {"status": "done", "reason": None, "task": task.name, "method": cfg.adapter.name,
            "seed": cfg.seed, "setting": rundir.setting_name(cfg), "config_hash": rundir.config_hash(cfg),
            "experiment": cfg.experiment, "grid": cfg.grid_name,
            "model": cfg.model.name_or_path, "model_identity": model_identity(cfg, model_config),
            "adapter": plain["adapter"],
            "hyperparameters": {"lr": cfg.lr, "batch_size": cfg.batch_size,
                                "grad_accumulation": accumulation,
                                "effective_batch": cfg.batch_size * accumulation, "epochs": cfg.epochs,
                                "rank": cfg.adapter.rank, "alpha": cfg.adapter.alpha,
                                "max_seq_len": cfg.max_seq_len, **plain["optim"],
                                "init_from": str(init_directory) if init_directory else None},
            **(choice.record() if choice else {}),  # engine (reference|fused), engine_reason (auto's why)
            "precision": precision,  # what ran: bf16, fp32-tf32 (CUDA) or fp32 (training/loop.py set_precision)
            "trainable": {"adapter": counts["adapter"], "with_head": counts["with_head"]},
            "main_metric": task.main_metric, "train_examples": train_size, "data": data_record,
            "versions": versions(), "device": describe(device)}


# Parts of a transformers config that a task or run sets, not the backbone.
_NOT_BACKBONE = ("id2label", "label2id", "num_labels", "problem_type", "transformers_version", "_name_or_path",
                 "architectures", "torch_dtype", "dtype", "finetuning_task", "hidden_dropout_prob",
                 "attention_probs_dropout_prob", "dropout", "attention_dropout", "return_dict", "output_attentions", "output_hidden_states")


def model_identity(cfg: DictConfig, model_config) -> dict:
    """Which backbone a run used: what `name_or_path` resolved to and a hash of its architecture."""
    architecture = {k: v for k, v in model_config.to_dict().items() if k not in _NOT_BACKBONE}
    digest = hashlib.sha256(json.dumps(architecture, sort_keys=True, default=str).encode()).hexdigest()
    return {"name_or_path": cfg.model.name_or_path, "source": model_source(cfg),
            "random_init": bool(cfg.model.random_init), "config_sha256": digest}


class MissingInitRun(FileNotFoundError):
    """The run to start from is not finished: a usage error (train.py prints it without a traceback)."""


def find_init_run(cfg: DictConfig, overrides) -> Path | None:
    """The run this one starts from: none, a directory, or `mnli` — the run that
    `python train.py <the same overrides> task=mnli` makes (adapter=lora for the LoRA-of-LoRA methods).
    Refuses a run that is unfinished or whose adapter or backbone does not match this one."""
    command = None
    if cfg.init_from in (None, "none", "null"):
        if cfg.adapter.name in FROM_LORA:
            raise ValueError(f"adapter={cfg.adapter.name} needs init_from=mnli or a LoRA run directory")
        return None
    if cfg.init_from != "mnli":
        directory = Path(cfg.init_from)
    else:
        keep = [o for o in overrides if not o.lstrip("+~").startswith(("task=", "init_from="))]
        if cfg.adapter.name in FROM_LORA:
            keep = [o for o in keep if not o.startswith("adapter=")] + ["adapter=lora"]
        directory = rundir.run_dir(compose(keep + ["task=mnli", "init_from=null"]))
        command = keep + ["task=mnli"]
        if rundir.run_dir(compose(command)) != directory:  # a preset sets init_from for MNLI too
            command.append("init_from=null")
    record = rundir.read_run(directory)
    if record.status != "done":
        state = f"no finished run ({record.status}{': ' + record.reason if record.reason else ''})"
        if command is None:
            raise MissingInitRun(f"init_from={cfg.init_from}: {directory} holds {state} to start from")
        raise MissingInitRun(
            f"task={cfg.task.name} starts from the matching MNLI run (init_from=mnli), and {directory} "
            f"holds {state}. Train it first:\n\n    python train.py {' '.join(shlex.quote(o) for o in command)}"
            "\n\nor start from the pretrained model with init_from=null.")
    check_init_compatible(cfg, directory, record.config)
    return directory


def check_init_compatible(cfg: DictConfig, directory: Path, started: dict) -> None:
    """A run starts from another only with the same adapter (LoRA for the LoRA-of-LoRA methods) and
    the same backbone: loading B-only's factors from a LoRA run, say, would silently turn its frozen
    random A into LoRA's trained one."""
    expected = dict(OmegaConf.to_container(cfg.adapter))
    if cfg.adapter.name in FROM_LORA:
        expected = {"name": "lora", **{k: expected[k] for k in ("rank", "alpha", "targets")}}
    ours = {"adapter": expected, "model": {k: cfg.model[k] for k in ("name_or_path", "random_init")}}
    theirs = {"adapter": {k: (started.get("adapter") or {}).get(k, "<absent>") for k in expected},
              "model": {k: (started.get("model") or {}).get(k, "<absent>") for k in ours["model"]}}
    changed = rundir.differences(theirs, ours)
    if changed:
        raise ValueError(f"cannot start from {directory}: "
                         + "; ".join(f"{key} is {old!r} there, {new!r} here" for key, old, new in changed))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name} asked for, but torch sees no CUDA GPU (use device=cpu)")
    return device


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def versions() -> dict:
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "harness": HARNESS_VERSION, "python": platform.python_version()}
