"""What both engines share (the task loss, the forward with every model input, prediction, AdamW,
precision) and the fused engine's epoch for a pack of runs (training/pack.py; one run is a pack of
one): per-member losses, keyed dropout streams, the fused clipping + AdamW + schedule step of
training/fused.py, autocast. A fused step copies two host buffers to the device (its flat batch with
its dropout keys, its labels), pinned and without blocking on an accelerator; the one blocking read
is the loss check every `log_every` steps (training/dispatch_count.py counts them:
benchmarks/throughput.py reports `host_syncs_per_step`)."""
from __future__ import annotations

import functools
import inspect
import math
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from adapters import peft_method
from training import flat, streams
from training.fused import Bank, decayed
from training.pack import Member


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each run's mean loss, (K,) for logits (K, B, C) and labels (K, B): cross-entropy for
    classification, mean squared error for STS-B's single regression output."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float(), reduction="none").mean(-1)
    losses = F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), reduction="none")
    return losses.view(labels.shape).mean(-1)


def make_optimizer(model: torch.nn.Module, lr: float, optim, device: torch.device):
    """torch's AdamW over the trainable parameters with the harness's weight-decay rule
    (training.fused.decayed), its fused kernel (one per step; on CUDA and CPU). The reference engine
    steps it (training/reference.py); the fused engine steps a bank instead (training/fused.py)."""
    flags = decayed(model)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if flags[id(p)]], "weight_decay": optim.weight_decay},
              {"params": [p for p in params if not flags[id(p)]], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=tuple(optim.betas),
                             eps=optim.eps, fused=device.type in ("cuda", "cpu"))


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


# What a batch may hold that a model's forward takes (BERT-family pair tasks need their token types).
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(model, batch: dict) -> list[str]:
    """The keys of MODEL_INPUTS that `batch` holds and `model`'s forward takes (DistilBERT, say, takes
    no token_type_ids: a tokenizer that returns them anyway does not break it). A PEFT model's forward
    names fewer inputs and hands the rest (token_type_ids) to the model it wraps: that one decides."""
    inner = getattr(model, "_orig_mod", model)  # (torch.compile's wrapper)
    if peft_method.is_peft(inner):
        inner = inner.get_base_model()
    accepted = _forward_inputs(type(inner))
    return [key for key in MODEL_INPUTS if key in batch and key in accepted]


@functools.cache
def _forward_inputs(model_class: type) -> frozenset[str]:
    """The named parameters of a model class's forward (read once per class: the training step calls
    model_inputs at every batch)."""
    return frozenset(inspect.signature(model_class.forward).parameters)


def forward(model, batch: dict, device, precision) -> torch.Tensor:
    """The logits of `batch`: every model input it holds (model_inputs) reaches the model."""
    with autocast(device, precision):
        return model(**{key: batch[key].to(device, non_blocking=True) for key in model_inputs(model, batch)}).logits


def fused_forward(model, batches: list[dict], seeds: list[int], *, epoch: int, step: int, device,
                  precision, dropout: bool = True, flat_forward=flat.forward, sources=None) -> torch.Tensor:
    """The fused engine's training forward of one step: the logits (K·B, C) of K members' sub-batches
    over one padding-free token stream (training/flat.py, through `flat_forward`: compiled or not),
    dropout masks keyed by each member's (seed, epoch, step) (training/streams.py). The fused engine
    runs RoBERTa alone (training/engine.py), so every step is a token stream. The one place training
    calls into streams and flat. `sources`: `streams.of(model)`, when the caller has it already."""
    size = len(batches[0]["labels"])
    sources = streams.of(model) if sources is None else sources
    keys = streams.host_row_keys(seeds, epoch, step, size) if dropout else None  # none to draw: no keys
    batch = flat.flatten(batches, device, keys)
    with streams.drawing(sources, batch.example_keys, batch.token_keys), autocast(device, precision):
        return flat_forward(model, batch)


def train_epoch(model, members: list[Member], bank: Bank, loaders, *, epoch: int, pad_token_id, device,
                precision, max_grad_norm, log_every, progress, flat_forward=flat.forward,
                grad_accumulation: int = 1) -> dict:
    """One pass over the members' loaders (one sub-batch each per step): one forward over all of
    them, each member's mean loss, one backward, one fused clipping and AdamW step (training/fused.py).
    Dropout masks come from each member's (seed, epoch, step) (training/streams.py). The members'
    tokens go through one padding-free stream (training/flat.py, through `flat_forward`: compiled or
    not). A member whose loss turns non-finite is marked
    failed and stops stepping; the others go on.

    ``grad_accumulation`` batches make one optimiser step (the batch per step is batch_size ×
    grad_accumulation): each batch's mean loss is divided by the size of its group, so a group of
    equal batches gives the gradient of their union's mean loss. The last group of an epoch may be
    shorter; it is divided by its own size and stepped."""
    model.train()
    runs, seeds = len(members), [m.cfg.seed for m in members]
    loss_sums = torch.zeros(runs, device=device)
    examples, steps, start = 0, len(loaders[0]), time.perf_counter()
    dropout, sources = streams.active(model), streams.of(model)
    for step, batches in enumerate(zip(*loaders), start=1):
        size = len(batches[0]["labels"])
        labels = flat.to_device(torch.stack([b["labels"] for b in batches]), device)
        logits = fused_forward(model, batches, seeds, epoch=epoch, step=step, device=device,
                               precision=precision, dropout=dropout, flat_forward=flat_forward, sources=sources)
        losses = task_loss(logits.view(runs, size, -1), labels)
        group_start = (step - 1) // grad_accumulation * grad_accumulation
        group_size = min(grad_accumulation, steps - group_start)
        total = losses.sum()
        (total / group_size if group_size > 1 else total).backward()  # (÷1 would change nothing but add kernels)
        if step == group_start + group_size:  # the group's last batch
            bank.step(max_grad_norm)
        loss_sums += losses.detach()
        examples += size
        if step % log_every == 0 or step == steps:
            means = (loss_sums / step).tolist()  # the one host synchronisation: every log_every steps
            for k, member in enumerate(members):
                if member.failure is None and not math.isfinite(means[k]):
                    member.failure = f"non-finite training loss ({means[k]}) by step {step} of the epoch"
                    bank.live[k] = False
            progress.step(step, members, means)
        if all(m.failure is not None for m in members):
            break
    elapsed = time.perf_counter() - start
    return {"train_loss": (loss_sums / max(steps, 1)).tolist(), "examples": examples,
            "time_s": elapsed, "examples_per_s": examples / elapsed if elapsed else 0.0}


@torch.no_grad()
def predict(model, loader, copies: int, *, device, precision) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Predictions (class ids, or floats for regression), labels and example indices of a split, for
    each of `copies` packed runs (every batch is repeated once per run, on the device)."""
    model.eval()
    predictions, labels, indices = [[] for _ in range(copies)], [], []
    for batch in loader:
        inputs = {k: batch[k].to(device, non_blocking=True).repeat(copies, 1) for k in model_inputs(model, batch)}
        logits = forward(model, inputs, device, precision).float()
        for k, part in enumerate(logits.chunk(copies)):
            predictions[k].append(part.squeeze(-1) if part.shape[-1] == 1 else part.argmax(-1))
        labels.append(batch["labels"])
        indices.append(batch["idx"])
    cat = lambda xs: torch.cat(xs).cpu().numpy()  # noqa: E731
    return [(cat(p), cat(labels), cat(indices)) for p in predictions]
