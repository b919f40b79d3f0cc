"""The optimisation itself: AdamW with linear warmup and decay, clipping, autocast, one epoch at a
time. No host synchronisation inside an epoch except every `log_every` steps (the NaN check)."""
from __future__ import annotations

import math
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_linear_schedule_with_warmup


class TrainingFailed(RuntimeError):
    """The run cannot go on (non-finite loss, out of memory); the reason ends up in metrics.json."""


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classification, mean squared error for STS-B's single regression output."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def make_optimizer(model: torch.nn.Module, lr: float, optim, device: torch.device):
    """AdamW over the trainable parameters; no weight decay on biases and LayerNorm weights, as the
    Hugging Face Trainer (and so the LoRA reference code) does."""
    no_decay = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)
                for p in m.parameters()}
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if name.endswith("bias") or id(p) in no_decay else decay).append(p)
    groups = [{"params": decay, "weight_decay": optim.weight_decay},
              {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=tuple(optim.betas),
                             eps=optim.eps, fused=device.type == "cuda")


def make_scheduler(optimizer, total_steps: int, warmup_ratio: float):
    return get_linear_schedule_with_warmup(optimizer, math.ceil(warmup_ratio * total_steps), total_steps)


def autocast(device: torch.device, precision: str):
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_epoch(model, loader, optimizer, scheduler, *, device, precision, max_grad_norm,
                log_every, progress) -> dict:
    """One pass over `loader`. Returns the mean loss, the examples seen and the wall time."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    loss_sum = torch.zeros((), device=device)
    examples, start = 0, time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        batch = to_device(batch, device)
        labels = batch.pop("labels")
        with autocast(device, precision):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = task_loss(logits, labels)
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
        examples += len(labels)
        if step % log_every == 0 or step == len(loader):
            mean = (loss_sum / step).item()  # the one host synchronisation: every log_every steps
            if not math.isfinite(mean):
                raise TrainingFailed(f"non-finite training loss ({mean}) by step {step} of the epoch")
            progress.step(step, loss=mean, lr=scheduler.get_last_lr()[0])
    elapsed = time.perf_counter() - start
    return {"train_loss": (loss_sum / max(len(loader), 1)).item(), "examples": examples,
            "time_s": elapsed, "examples_per_s": examples / elapsed if elapsed else 0.0}


@torch.no_grad()
def predict(model, loader, *, device, precision) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions (class ids, or floats for regression), labels and example indices of a split."""
    model.eval()
    predictions, labels, indices = [], [], []
    for batch in loader:
        batch = to_device(batch, device)
        with autocast(device, precision):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logits = logits.float()
        predictions.append(logits.squeeze(-1) if logits.shape[-1] == 1 else logits.argmax(-1))
        labels.append(batch["labels"])
        indices.append(batch["idx"])
    cat = lambda xs: torch.cat(xs).cpu().numpy()  # noqa: E731
    return cat(predictions), cat(labels), cat(indices)
