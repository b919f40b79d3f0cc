"""The optimisation itself: AdamW with linear warmup and decay, clipping, autocast, one epoch at a
time, for a pack of runs (training/pack.py; one run is a pack of one). No host synchronisation
inside an epoch except every `log_every` steps (the NaN check)."""
from __future__ import annotations

import math
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_linear_schedule_with_warmup

from training.pack import Member, concat_batches


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classification, mean squared error for STS-B's single regression output."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float())
    return F.cross_entropy(logits.float(), labels)


def make_optimizer(model: torch.nn.Module, lr: float, optim, device: torch.device):
    """AdamW over the trainable parameters; no weight decay on biases and LayerNorm weights, as the
    Hugging Face Trainer (and so the LoRA reference code) does, nor on scalars (SymLoRA's λ): decay
    would pull λ, and with it W0, towards zero whatever the data says."""
    no_decay = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)
                for p in m.parameters()}
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if name.endswith("bias") or p.ndim == 0 or id(p) in no_decay else decay).append(p)
    groups = [{"params": decay, "weight_decay": optim.weight_decay},
              {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=tuple(optim.betas),
                             eps=optim.eps, fused=device.type == "cuda")


def make_scheduler(optimizer, total_steps: int, warmup_ratio: float):
    return get_linear_schedule_with_warmup(optimizer, math.ceil(warmup_ratio * total_steps), total_steps)


PRECISIONS = ("bf16", "fp32")


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA (our speed choice); fp32 otherwise (``precision=fp32`` on CUDA keeps
    the LoRA scripts' fp32, with TF32 matmuls: see :func:`set_precision`)."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def set_precision(device: torch.device, precision: str) -> str:
    """Check ``precision`` and set the matmul mode; returns what runs, as metrics.json records it:
    ``bf16`` (bf16 autocast, CUDA), ``fp32-tf32`` (fp32 weights and activations, TF32 matmuls on
    CUDA, as the LoRA scripts on an Ampere or later GPU) or ``fp32`` (CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {PRECISIONS}")
    if device.type != "cuda":
        return "fp32"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return "bf16" if precision == "bf16" else "fp32-tf32"


def optimizer_steps(micro_batches: int, grad_accumulation: int) -> int:
    """Optimiser steps in an epoch of ``micro_batches`` loader batches: one per ``grad_accumulation``
    batches, and one more for a shorter last group (as the Hugging Face Trainer does)."""
    return math.ceil(micro_batches / grad_accumulation)


def forward(model, batch: dict, device, precision) -> torch.Tensor:
    with autocast(device, precision):
        return model(input_ids=batch["input_ids"].to(device, non_blocking=True),
                     attention_mask=batch["attention_mask"].to(device, non_blocking=True)).logits


def train_epoch(model, members: list[Member], loaders, *, pad_token_id, device, precision,
                max_grad_norm, log_every, progress, grad_accumulation: int = 1) -> dict:
    """One pass over the members' loaders (one sub-batch each per step). Each member's loss reaches
    only its own parameters; each is clipped and stepped on its own. A member whose loss turns
    non-finite is marked failed and stops stepping; the others go on.

    ``grad_accumulation`` batches make one optimiser step (the batch per step is batch_size ×
    grad_accumulation): each batch's mean loss is divided by the size of its group, so a group of
    equal batches gives the gradient of their union's mean loss. The last group of an epoch may be
    shorter; it is divided by its own size and stepped."""
    model.train()
    params = [[p for group in m.optimizer.param_groups for p in group["params"]] for m in members]
    loss_sums = torch.zeros(len(members), device=device)
    examples, steps, start = 0, len(loaders[0]), time.perf_counter()
    for step, batches in enumerate(zip(*loaders), start=1):
        logits = forward(model, concat_batches(batches, pad_token_id), device, precision)
        losses = [task_loss(part, batch["labels"].to(device, non_blocking=True))
                  for part, batch in zip(logits.chunk(len(members)), batches)]
        live = [k for k, m in enumerate(members) if m.failure is None]
        if not live:
            break
        group_start = (step - 1) // grad_accumulation * grad_accumulation
        group_size = min(grad_accumulation, steps - group_start)
        (sum(losses[k] for k in live) / group_size).backward()
        for k in (live if step == group_start + group_size else ()):  # the group's last batch: step
            member = members[k]
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params[k], max_grad_norm)
            member.optimizer.step()
            member.scheduler.step()
            member.optimizer.zero_grad(set_to_none=True)
        loss_sums += torch.stack([loss.detach() for loss in losses])
        examples += len(batches[0]["labels"])
        if step % log_every == 0 or step == steps:
            means = (loss_sums / step).tolist()  # the one host synchronisation: every log_every steps
            for k in live:
                if not math.isfinite(means[k]):
                    members[k].failure = f"non-finite training loss ({means[k]}) by step {step} of the epoch"
            progress.step(step, members, means)
    elapsed = time.perf_counter() - start
    return {"train_loss": (loss_sums / max(steps, 1)).tolist(), "examples": examples,
            "time_s": elapsed, "examples_per_s": examples / elapsed if elapsed else 0.0}


@torch.no_grad()
def predict(model, loader, copies: int, *, device, precision) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Predictions (class ids, or floats for regression), labels and example indices of a split, for
    each of `copies` packed runs (every batch is repeated once per run)."""
    model.eval()
    predictions, labels, indices = [[] for _ in range(copies)], [], []
    for batch in loader:
        logits = forward(model, concat_batches([batch] * copies, 0), device, precision).float()
        for k, part in enumerate(logits.chunk(copies)):
            predictions[k].append(part.squeeze(-1) if part.shape[-1] == 1 else part.argmax(-1))
        labels.append(batch["labels"])
        indices.append(batch["idx"])
    cat = lambda xs: torch.cat(xs).cpu().numpy()  # noqa: E731
    return [(cat(p), cat(labels), cat(indices)) for p in predictions]
