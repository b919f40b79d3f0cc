"""The epochs of a run on the reference engine (training/reference.py) or of a pack of runs on the
fused engine (training/pack.py): resume each member from its checkpoint, train and evaluate them, keep each one's epoch records, best adapter and checkpoint
in its own run directory, then write each one's best-epoch predictions."""
from __future__ import annotations

import logging
import math
from typing import Callable

import torch

import adapters
import rundir
from glue import compute_metrics, write_predictions, write_validation_predictions
from training import checkpoint, flat
from training.data import RunData
from training.loop import optimizer_steps, predict
from training.pack import Member
from training.progress import Progress, run_name

log = logging.getLogger("train")


def fit(engine, members: list[Member], data: RunData, task, device, pad_token_id: int,
        finish: Callable[[Member], None]) -> None:
    """The epochs (from the last checkpoint on), then each run's best-epoch predictions. `engine`:
    a training/pack.py Pack (the fused engine, K members) or a training/reference.py Solo (one
    member). `finish` is called on a member as soon as it fails (a failure is final, whatever
    happens to the others)."""
    cfg = members[0].cfg
    steps_per_epoch, total = schedule_steps(data, cfg)
    engine.prepare(members, total_steps=total, warmup_steps=math.ceil(cfg.optim.warmup_ratio * total),
                   device=device)
    data_files = checkpoint.data_fingerprint(data)  # a checkpoint resumes only on the data it trained on
    for member in members:
        resumed = checkpoint.load(member.directory, engine.use(member), member.optimizer, member.scheduler,
                                  member.info["config_hash"], data_files)
        if resumed:
            member.best = resumed["best"]
            log.info("resuming %s after epoch %d", member.directory, resumed["epoch"])
        member.history = rundir.keep_epochs(member.directory, resumed["epoch"] if resumed else 0)
    done_epochs = len(members[0].history)
    net = engine.net(members)  # built after loading: frozen stacked tensors read the loaded values
    options = {}
    # Compiled once: the modules stay the same objects between epochs, so the graphs are reused.
    if cfg.compile:
        mode = None if cfg.compile is True else cfg.compile
        net = torch.compile(net, mode=mode)
        if engine.name == "fused":
            options["flat_forward"] = torch.compile(flat.forward, mode=mode, dynamic=True)

    name = run_name(cfg) if len(members) == 1 else f"{task.name}/{cfg.adapter.name} pack of {len(members)}"
    progress = Progress(name, steps_per_epoch, members, cfg.logger)
    try:
        for epoch in range(done_epochs + 1, cfg.epochs + 1):
            if all(m.failure is not None for m in members):
                break
            progress.start_epoch(epoch, cfg.epochs)
            engine.net(members)
            loaders = [data.train_loader(epoch, m.cfg.seed) for m in members]
            loaders[0] = progress.track(loaders[0])  # the bar moves at each batch
            stats = train_epoch(engine, net, members, loaders, epoch=epoch, pad_token_id=pad_token_id,
                                       device=device, precision=cfg.precision,
                                       max_grad_norm=cfg.optim.max_grad_norm, log_every=cfg.log_every,
                                       progress=progress, grad_accumulation=cfg.grad_accumulation, **options)
            scores = evaluate(net, len(members), data, task, device, cfg.precision)
            for k, member in enumerate(members):
                if member.failure is not None:
                    finish(member)  # at once (a no-op for one failed before)
                    continue
                record = {"epoch": epoch, "train_loss": stats["train_loss"][k],
                          "lr": member.scheduler.get_last_lr()[0], "time_s": stats["time_s"],
                          "examples_per_s": stats["examples_per_s"], "validation": scores[k]}
                member.history.append(record)
                rundir.append_epoch(member.directory, record)
                progress.end_epoch(member, record)
                model = engine.use(member)
                if is_better(record["validation"][task.main_metric], member.best):
                    member.best = {"epoch": epoch, "score": record["validation"][task.main_metric],
                                   "validation": record["validation"]}
                    adapters.save_trainable(model, member.directory / "adapter.safetensors")
                    rundir.write_json_atomic(member.directory / "layer_norms.json", adapters.layer_norms(model))
                checkpoint.save(member.directory, model, member.optimizer, member.scheduler, epoch, member.best,
                                member.info["config_hash"], data_files)
    finally:
        progress.close(members)

    live = [m for m in members if m.failure is None]
    for member in live:
        adapters.load_trainable(engine.use(member), member.directory / "adapter.safetensors")
    if live:
        write_all_predictions(engine.net(members), members, data, device, cfg.precision)


def train_epoch(engine, net, members: list[Member], loaders, **options) -> dict:
    """One epoch on `engine` (the reference engine's or the fused engine's own loop)."""
    return engine.train_epoch(net, members, loaders, **options)


def schedule_steps(data: RunData, cfg) -> tuple[int, int]:
    """(loader batches per epoch, optimiser steps of the whole run): the schedule counts updates."""
    batches = len(data.train_loader(1, cfg.seed))
    return batches, optimizer_steps(batches, cfg.grad_accumulation) * cfg.epochs


def evaluate(model, copies: int, data: RunData, task, device, precision) -> list[dict]:
    """Validation scores of each packed run."""
    scores = [{} for _ in range(copies)]
    for split, suffix in task.eval_splits:
        outputs = predict(model, data.eval_loader(split), copies, device=device, precision=precision)
        for k, (predictions, labels, _) in enumerate(outputs):
            scores[k].update({f"{m}{suffix}": v for m, v in compute_metrics(task, predictions, labels).items()})
    return scores


def write_all_predictions(model, members: list[Member], data: RunData, device, precision) -> None:
    """Validation predictions with labels, and the GLUE server files of every test split there is,
    for every member that did not fail."""
    for split_task, split, is_test in data.prediction_splits():
        outputs = predict(model, data.eval_loader(split, split_task), len(members), device=device,
                          precision=precision)
        for member, (predictions, labels, indices) in zip(members, outputs):
            if member.failure is not None:
                continue
            out_dir = member.directory / "predictions"
            if is_test:
                write_predictions(split_task, split, indices, predictions, out_dir)
            else:
                write_validation_predictions(split_task, split, indices, predictions, labels, out_dir)


def is_better(score: float, best: dict) -> bool:
    """A NaN score (e.g. Pearson of constant predictions) never beats a real one."""
    if best["epoch"] is None:
        return True
    return not math.isnan(score) and (math.isnan(best["score"]) or score > best["score"])
