"""One run, start to finish: check the configuration, build data and model, train (resuming when a
checkpoint is there), and leave the run directory of docs/run_directory.md behind."""
from __future__ import annotations

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
from training.loop import TrainingFailed, make_optimizer, make_scheduler, predict, train_epoch
from training.model import FROM_LORA, build_model, build_tokenizer, load_init_state
from training.progress import Progress
from training.run_dir import read_metrics, run_dir, setting_name, write_json_atomic

log = logging.getLogger("train")
HARNESS_VERSION = "0.1.0"


def run(cfg: DictConfig, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Train the run `cfg` describes (skipped when finished, unless rerun=true); returns its metrics.
    `overrides` are the command-line overrides it was composed from (used to find its MNLI run)."""
    cfg = resolved(cfg)
    task = get_task(cfg.task.name)
    directory = run_dir(cfg)
    finished = read_metrics(directory)
    if finished and not cfg.rerun:
        log.info("%s is finished (%s): skipped; rerun=true runs it again", directory, finished["status"])
        return finished
    if cfg.rerun:
        shutil.rmtree(directory, ignore_errors=True)

    device = pick_device(cfg.device)
    init_directory = find_init_run(cfg, overrides)
    init_state = load_init_state(init_directory) if init_directory else None
    tokenizer = build_tokenizer(cfg)
    data = RunData(cfg, task, tokenizer)
    model = build_model(cfg, task.num_labels, init_state).to(device)
    counts = adapters.count_trainable(model)

    directory.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, directory / "config.yaml")
    metrics = {"status": "done", "reason": None, "task": task.name, "method": cfg.adapter.name,
               "seed": cfg.seed, "setting": setting_name(cfg), "model": cfg.model.name,
               "experiment": cfg.get("experiment"),
               "hyperparameters": {"lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs,
                                   "rank": cfg.adapter.rank, "alpha": cfg.adapter.alpha,
                                   "max_seq_len": cfg.max_seq_len, **OmegaConf.to_container(cfg.optim),
                                   "init_from": str(init_directory) if init_directory else None},
               "trainable": {"adapter": counts["adapter"], "with_head": counts["with_head"]},
               "main_metric": task.main_metric, "train_examples": data.train_size,
               "versions": versions(), "device": describe(device)}
    started = time.perf_counter()
    try:
        metrics.update(fit(cfg, model, data, task, device, directory))
    except TrainingFailed as error:
        metrics.update(status="failed", reason=str(error))
    except torch.cuda.OutOfMemoryError as error:
        metrics.update(status="failed", reason=f"CUDA out of memory at batch_size={cfg.batch_size}, "
                       f"max_seq_len={cfg.max_seq_len}: lower either ({str(error).splitlines()[0]})")
    metrics["time_s"] = time.perf_counter() - started
    write_json_atomic(directory / "metrics.json", metrics)
    log.info("%s: %s%s", directory, metrics["status"],
             f" ({metrics['reason']})" if metrics["reason"] else
             f", best epoch {metrics['best_epoch']}: {metrics['best']}")
    return metrics


def fit(cfg: DictConfig, model, data: "RunData", task, device, directory: Path) -> dict:
    """The epochs (from the last checkpoint on), then the best epoch's predictions."""
    optimizer = make_optimizer(model, cfg.lr, cfg.optim, device)
    steps_per_epoch = len(data.train_loader(epoch=1))
    scheduler = make_scheduler(optimizer, steps_per_epoch * cfg.epochs, cfg.optim.warmup_ratio)
    resumed = checkpoint.load(directory, model, optimizer, scheduler)
    done_epochs = resumed["epoch"] if resumed else 0
    best = resumed["best"] if resumed else {"epoch": None, "score": math.nan, "validation": {}}
    history = keep_epochs(directory / "epochs.jsonl", done_epochs)
    if resumed:
        log.info("resuming %s after epoch %d", directory, done_epochs)

    progress = Progress(f"{task.name}/{cfg.adapter.name}/seed={cfg.seed}", steps_per_epoch,
                        cfg.log_every, directory / "tensorboard" if cfg.logger == "tensorboard" else None)
    try:
        for epoch in range(done_epochs + 1, cfg.epochs + 1):
            progress.start_epoch(epoch, cfg.epochs)
            stats = train_epoch(model, data.train_loader(epoch), optimizer, scheduler, device=device,
                                precision=cfg.precision, max_grad_norm=cfg.optim.max_grad_norm,
                                log_every=cfg.log_every, progress=progress)
            record = {"epoch": epoch, "train_loss": stats["train_loss"], "lr": scheduler.get_last_lr()[0],
                      "time_s": stats["time_s"], "examples_per_s": stats["examples_per_s"],
                      "validation": evaluate(model, data, task, device, cfg.precision)}
            history.append(record)
            with open(directory / "epochs.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            progress.end_epoch(record)
            if is_better(record["validation"][task.main_metric], best):
                best = {"epoch": epoch, "score": record["validation"][task.main_metric],
                        "validation": record["validation"]}
                adapters.save_trainable(model, directory / "adapter.safetensors")
                write_json_atomic(directory / "layer_norms.json", adapters.layer_norms(model))
            checkpoint.save(directory, model, optimizer, scheduler, epoch, best)
    finally:
        progress.close()

    adapters.load_trainable(model, directory / "adapter.safetensors")
    write_all_predictions(model, data, task, device, cfg.precision, directory / "predictions")
    checkpoint.remove(directory)
    seen = sum(r["examples_per_s"] * r["time_s"] for r in history)
    return {"best_epoch": best["epoch"], "best": best["validation"],
            "last_epoch": history[-1]["epoch"], "last": history[-1]["validation"],
            "examples_per_s": seen / max(sum(r["time_s"] for r in history), 1e-9)}


def is_better(score: float, best: dict) -> bool:
    """A NaN score (e.g. Pearson of constant predictions) never beats a real one."""
    if best["epoch"] is None:
        return True
    return not math.isnan(score) and (math.isnan(best["score"]) or score > best["score"])


def evaluate(model, data, task, device, precision) -> dict:
    scores = {}
    for split, suffix in task.eval_splits:
        predictions, labels, _ = predict(model, data.eval_loader(split), device=device, precision=precision)
        scores.update({f"{k}{suffix}": v for k, v in compute_metrics(task, predictions, labels).items()})
    return scores


def write_all_predictions(model, data, task, device, precision, out_dir: Path) -> None:
    """Validation predictions with labels, and the GLUE server files of every test split there is."""
    for split_task, split, is_test in data.prediction_splits():
        predictions, labels, indices = predict(model, data.eval_loader(split, split_task), device=device,
                                               precision=precision)
        if is_test:
            write_predictions(split_task, split, indices, predictions, out_dir)
        else:
            write_validation_predictions(split_task, split, indices, predictions, labels, out_dir)


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
