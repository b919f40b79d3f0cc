"""Runs, start to finish: check the configuration, build data and model, train (resuming when a
checkpoint is there), and leave the run directory of docs/run_directory.md behind. Several runs
that differ only in seed, learning rate or weight decay can train as one pack (training/pack.py);
a single run is a pack of one."""
from __future__ import annotations

import itertools
import json
import logging
import math
import platform
import shutil
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

import adapters
from glue import compute_metrics, get_task, write_predictions, write_validation_predictions
from training import checkpoint
from training.config import compose, resolved
from training.data import RunData
from training.loop import make_optimizer, make_scheduler, predict, train_epoch
from training.model import FROM_LORA, build_model, build_tokenizer, load_init_state
from training.pack import Member, Pack
from training.progress import Progress, run_name
from training.run_dir import read_metrics, run_dir, setting_name, write_json_atomic

log = logging.getLogger("train")
HARNESS_VERSION = "0.1.0"
# What may differ between the runs of a pack; everything else must be equal.
PACK_FREE = ("seed", "lr", "init_from", "rerun")
UNPACKABLE = ("bitfit", "full")  # they train the shared backbone itself


def run(cfg: DictConfig, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Train the run `cfg` describes (skipped when finished, unless rerun=true); returns its metrics.
    `overrides` are the command-line overrides it was composed from (used to find its MNLI run)."""
    return run_pack([(cfg, overrides)])[0]


def run_pack(jobs: list[tuple[DictConfig, list[str] | tuple[str, ...]]]) -> list[dict]:
    """Train the runs `jobs` (config, overrides) describe as one pack; returns each one's metrics."""
    cfgs = [resolved(cfg) for cfg, _ in jobs]
    check_packable(cfgs)
    task = get_task(cfgs[0].task.name)
    results: list[dict | None] = [None] * len(cfgs)
    todo = []
    for i, cfg in enumerate(cfgs):
        finished = read_metrics(run_dir(cfg))
        if finished and not cfg.rerun:
            log.info("%s is finished (%s): skipped; rerun=true runs it again", run_dir(cfg), finished["status"])
            results[i] = finished
        else:
            todo.append(i)
    if not todo:
        return results

    device = pick_device(cfgs[0].device)
    data = RunData(cfgs[0], task, tokenizer := build_tokenizer(cfgs[0]))
    pack, members = None, {}
    for i in todo:  # each run is built exactly as a lone run would be, then joins the pack
        cfg = cfgs[i]
        init_directory = find_init_run(cfg, jobs[i][1])
        model = build_model(cfg, task.num_labels, load_init_state(init_directory) if init_directory else None)
        if pack is None:
            pack = Pack(model.to(device), adapters.find_head(model)[0])
        member = pack.add(cfg, run_dir(cfg), model)
        member.layers = {name: layer.to(device) for name, layer in member.layers.items()}
        member.head.to(device)
        member.info = describe_run(cfg, task, adapters.count_trainable(pack.use(member)), init_directory,
                                   data.train_size, device)
        members[i] = member
    for member in members.values():
        if member.cfg.rerun:
            shutil.rmtree(member.directory, ignore_errors=True)
        member.directory.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(member.cfg, member.directory / "config.yaml")

    # Runs resumed from different epochs cannot share steps: each such group trains on its own.
    by_epoch = lambda i: checkpoint.saved_epoch(members[i].directory)  # noqa: E731
    for _, group in itertools.groupby(sorted(members, key=by_epoch), key=by_epoch):
        group = [members[i] for i in group]
        started = time.perf_counter()
        try:
            fit(pack, group, data, task, device, tokenizer.pad_token_id)
        except torch.cuda.OutOfMemoryError as error:
            for member in group:
                runs = f" × {len(group)} packed runs" if len(group) > 1 else ""
                member.failure = (f"CUDA out of memory at batch_size={member.cfg.batch_size}{runs}, "
                                  f"max_seq_len={member.cfg.max_seq_len}: lower either "
                                  f"({str(error).splitlines()[0]})")
        for member in group:
            member.info["time_s"] = time.perf_counter() - started
            finish(member)
    for i, member in members.items():
        results[i] = read_metrics(member.directory)
    return results


def fit(pack: Pack, members: list[Member], data: RunData, task, device, pad_token_id: int) -> None:
    """The epochs (from the last checkpoint on), then each run's best-epoch predictions."""
    cfg = members[0].cfg
    steps_per_epoch = len(data.train_loader(1, cfg.seed))
    for member in members:
        model = pack.use(member)
        member.optimizer = make_optimizer(model, member.cfg.lr, member.cfg.optim, device)
        member.scheduler = make_scheduler(member.optimizer, steps_per_epoch * cfg.epochs, cfg.optim.warmup_ratio)
        resumed = checkpoint.load(member.directory, model, member.optimizer, member.scheduler)
        if resumed:
            member.best = resumed["best"]
            log.info("resuming %s after epoch %d", member.directory, resumed["epoch"])
        member.history = keep_epochs(member.directory / "epochs.jsonl", resumed["epoch"] if resumed else 0)
    done_epochs = len(members[0].history)
    # Compiled once: the packed modules stay the same objects between epochs, so the graphs are reused.
    net = (torch.compile(pack.model, mode=None if cfg.compile is True else cfg.compile) if cfg.compile
           else pack.model)

    name = run_name(cfg) if len(members) == 1 else f"{task.name}/{cfg.adapter.name} pack of {len(members)}"
    progress = Progress(name, steps_per_epoch, {str(m.directory): m.directory / "tensorboard" for m in members}
                        if cfg.logger == "tensorboard" else None)
    try:
        for epoch in range(done_epochs + 1, cfg.epochs + 1):
            live = [m for m in members if m.failure is None]
            if not live:
                break
            progress.start_epoch(epoch, cfg.epochs)
            pack.use_pack(live)
            stats = train_epoch(net, live, [data.train_loader(epoch, m.cfg.seed) for m in live],
                                pad_token_id=pad_token_id, device=device, precision=cfg.precision,
                                max_grad_norm=cfg.optim.max_grad_norm, log_every=cfg.log_every, progress=progress)
            scores = evaluate(net, len(live), data, task, device, cfg.precision)
            for k, member in enumerate(live):
                if member.failure is not None:
                    finish(member)  # at once: a failure is final, whatever happens to the others
                    continue
                record = {"epoch": epoch, "train_loss": stats["train_loss"][k],
                          "lr": member.scheduler.get_last_lr()[0], "time_s": stats["time_s"],
                          "examples_per_s": stats["examples_per_s"], "validation": scores[k]}
                member.history.append(record)
                with open(member.directory / "epochs.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                progress.end_epoch(member, record)
                model = pack.use(member)
                if is_better(record["validation"][task.main_metric], member.best):
                    member.best = {"epoch": epoch, "score": record["validation"][task.main_metric],
                                   "validation": record["validation"]}
                    adapters.save_trainable(model, member.directory / "adapter.safetensors")
                    write_json_atomic(member.directory / "layer_norms.json", adapters.layer_norms(model))
                checkpoint.save(member.directory, model, member.optimizer, member.scheduler, epoch, member.best)
    finally:
        progress.close()

    live = [m for m in members if m.failure is None]
    for member in live:
        adapters.load_trainable(pack.use(member), member.directory / "adapter.safetensors")
    if live:
        pack.use_pack(live)
        write_all_predictions(net, live, data, device, cfg.precision)


def evaluate(model, copies: int, data: RunData, task, device, precision) -> list[dict]:
    """Validation scores of each packed run."""
    scores = [{} for _ in range(copies)]
    for split, suffix in task.eval_splits:
        outputs = predict(model, data.eval_loader(split), copies, device=device, precision=precision)
        for k, (predictions, labels, _) in enumerate(outputs):
            scores[k].update({f"{m}{suffix}": v for m, v in compute_metrics(task, predictions, labels).items()})
    return scores


def write_all_predictions(model, members: list[Member], data: RunData, device, precision) -> None:
    """Validation predictions with labels, and the GLUE server files of every test split there is."""
    for split_task, split, is_test in data.prediction_splits():
        outputs = predict(model, data.eval_loader(split, split_task), len(members), device=device,
                          precision=precision)
        for member, (predictions, labels, indices) in zip(members, outputs):
            out_dir = member.directory / "predictions"
            if is_test:
                write_predictions(split_task, split, indices, predictions, out_dir)
            else:
                write_validation_predictions(split_task, split, indices, predictions, labels, out_dir)


def finish(member: Member) -> None:
    """Write metrics.json (last, atomically) unless already written; the resume state goes."""
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
        checkpoint.remove(member.directory)
    write_json_atomic(member.directory / "metrics.json", metrics)
    log.info("%s: %s%s", member.directory, metrics["status"],
             f" ({metrics['reason']})" if metrics["reason"] else
             f", best epoch {metrics['best_epoch']}: {metrics['best']}")


def describe_run(cfg: DictConfig, task, counts: dict, init_directory: Path | None, train_size: int,
                 device) -> dict:
    """The part of metrics.json known before training."""
    return {"status": "done", "reason": None, "task": task.name, "method": cfg.adapter.name,
            "seed": cfg.seed, "setting": setting_name(cfg), "model": cfg.model.name,
            "experiment": cfg.get("experiment"),
            "hyperparameters": {"lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs,
                                "rank": cfg.adapter.rank, "alpha": cfg.adapter.alpha,
                                "max_seq_len": cfg.max_seq_len, **OmegaConf.to_container(cfg.optim),
                                "init_from": str(init_directory) if init_directory else None},
            "trainable": {"adapter": counts["adapter"], "with_head": counts["with_head"]},
            "main_metric": task.main_metric, "train_examples": train_size,
            "versions": versions(), "device": describe(device)}


def check_packable(cfgs: list[DictConfig]) -> None:
    """Runs of one pack may differ in PACK_FREE settings only (and never train the backbone)."""
    if len(cfgs) == 1:
        return
    strip = lambda c: {k: v for k, v in OmegaConf.to_container(c).items() if k not in PACK_FREE}  # noqa: E731
    first = strip(cfgs[0])
    first["optim"].pop("weight_decay")
    for cfg in cfgs[1:]:
        other = strip(cfg)
        other["optim"].pop("weight_decay")
        if other != first:
            keys = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
            raise ValueError(f"runs of a pack may differ only in seed, lr, optim.weight_decay and "
                             f"init_from; these differ too: {keys}")
    if cfgs[0].adapter.name in UNPACKABLE:
        raise ValueError(f"adapter={cfgs[0].adapter.name} trains the backbone itself: it cannot be packed")


def is_better(score: float, best: dict) -> bool:
    """A NaN score (e.g. Pearson of constant predictions) never beats a real one."""
    if best["epoch"] is None:
        return True
    return not math.isnan(score) and (math.isnan(best["score"]) or score > best["score"])


def keep_epochs(path: Path, epochs: int) -> list[dict]:
    """The first `epochs` lines of epochs.jsonl (an interruption may have left one more)."""
    lines = path.read_text().splitlines()[:epochs] if path.exists() else []
    path.write_text("".join(line + "\n" for line in lines))
    return [json.loads(line) for line in lines]


def find_init_run(cfg: DictConfig, overrides) -> Path | None:
    """The run this one starts from: none, a directory, or `mnli` — the run that
    `python train.py <the same overrides> task=mnli` makes (adapter=lora for the LoRA-of-LoRA methods)."""
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
        directory = run_dir(compose(keep + ["task=mnli", "init_from=null"]))
    metrics = read_metrics(directory)
    if not metrics or metrics["status"] != "done":
        raise FileNotFoundError(
            f"task={cfg.task.name} starts from an MNLI run (init_from={cfg.init_from}), but {directory} "
            "has no finished run: train it first with the same overrides and task=mnli, "
            "or set init_from=null to start from the pretrained model")
    return directory


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
