"""The reference engine: one run trained through Transformers' own forward. Read this first.

The model is ``training.model.build_model``'s output: a Transformers ``*ForSequenceClassification``
(its attention, its ``nn.Dropout`` modules, its head) with the readable adapter layers of
``adapters/*.py`` injected in place of the target linears. One optimiser step is what the Hugging
Face Trainer does:

    loss = task loss of model(**batch).logits        (cross-entropy, or MSE for STS-B)
           + the method's own term, if it registered one (AdaLoRA's orthogonal regulariser)
    (loss / batches in the group).backward()         (gradient accumulation)
    clip_grad_norm_(trainable, max_grad_norm)
    AdamW step; linear warmup-decay schedule step
    after_step(model, step)                          (a method's own hook, if it registered one: it
                                                      sees the step's gradients, as AdaLoRA needs)
    zero_grad

The trainable tensors are exactly those with ``requires_grad``; dropout draws from torch's global
generator, which the run seeds at its start (training/run.py ``seed_everything``) and checkpoints
(training/checkpoint.py saves the RNG state), so a run gives the same numbers in a fresh process, in
a multirun, and when resumed.
"""
from __future__ import annotations

import math
import time

import torch
from transformers import get_linear_schedule_with_warmup

from training import loop

AFTER_STEP = "harness_after_step"  # the attribute a method sets on the model to be called after each step


def register_after_step(model: torch.nn.Module, hook) -> None:
    """Have ``hook(global_step)`` called after each optimiser step of `model` (e.g. PEFT's AdaLoRA,
    whose ``update_and_allocate(step)`` re-allocates ranks as it trains)."""
    object.__setattr__(model, AFTER_STEP, hook)  # a plain attribute: not a submodule, not in state_dict


EXTRA_LOSS = "harness_extra_loss"  # a method's own loss term (AdaLoRA's orthogonal regulariser)


def register_extra_loss(model: torch.nn.Module, term) -> None:
    """Have ``term()`` (the method's own loss term of the last forward) added to each batch's loss."""
    object.__setattr__(model, EXTRA_LOSS, term)


def extra_loss(model: torch.nn.Module):
    term = getattr(model, EXTRA_LOSS, None)
    return term() if callable(term) else 0.0


def after_step(model: torch.nn.Module, global_step: int) -> None:
    """Call the hook a method registered on `model` (register_after_step), if any."""
    hook = getattr(model, AFTER_STEP, None)
    if callable(hook):
        hook(global_step)


class Solo:
    """One run on the reference engine, with the interface training/fit.py drives (the same as
    training/pack.py ``Pack``): the member's model, optimiser and schedule, and its epoch."""

    name = "reference"

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def prepare(self, members, *, total_steps: int, warmup_steps: int, device) -> None:
        """torch's AdamW (the harness's weight-decay rule, training/loop.py make_optimizer) and
        transformers' linear warmup-decay schedule."""
        (member,) = members
        cfg = member.cfg
        member.optimizer = loop.make_optimizer(self.model, cfg.lr, cfg.optim, device)
        member.scheduler = get_linear_schedule_with_warmup(member.optimizer, warmup_steps, total_steps)

    def use(self, member) -> torch.nn.Module:
        return self.model

    def net(self, members) -> torch.nn.Module:
        return self.model

    def train_epoch(self, model, members, loaders, *, epoch, device, precision, max_grad_norm, log_every,
                    progress, grad_accumulation=1, **_) -> dict:
        (member,), (loader,) = members, loaders
        return train_epoch(model, member, loader, device=device, precision=precision,
                           max_grad_norm=max_grad_norm, log_every=log_every, progress=progress,
                           grad_accumulation=grad_accumulation)


def train_epoch(model, member, loader, *, device, precision, max_grad_norm, log_every, progress,
                grad_accumulation: int = 1) -> dict:
    """One pass over `loader`. ``grad_accumulation`` batches make one optimiser step; each batch's
    loss is divided by its group's size (the last group of an epoch may be shorter: divided by its
    own). A non-finite mean loss (checked every `log_every` steps: the one host synchronisation)
    marks the run failed and ends the epoch."""
    model.train()
    optimizer, scheduler = member.optimizer, member.scheduler
    trainable = [p for p in model.parameters() if p.requires_grad]
    loss_sum = torch.zeros((), device=device)
    examples, steps, step, start = 0, len(loader), 0, time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        labels = batch["labels"].to(device, non_blocking=True)
        loss = loop.task_loss(loop.forward(model, batch, device, precision).unsqueeze(0), labels.unsqueeze(0)).sum()  # (one run)
        loss = loss + extra_loss(model)  # a method's own term (register_extra_loss), 0 for most
        group_start = (step - 1) // grad_accumulation * grad_accumulation
        group_size = min(grad_accumulation, steps - group_start)
        (loss / group_size).backward()
        if step == group_start + group_size:  # the group's last batch
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
            optimizer.step()
            scheduler.step()
            # the schedule counts optimiser steps; before zero_grad: AdaLoRA's hook reads the gradients
            after_step(model, scheduler.last_epoch)
            optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
        examples += len(labels)
        if step % log_every == 0 or step == steps:
            mean = (loss_sum / step).item()
            if not math.isfinite(mean):
                member.failure = f"non-finite training loss ({mean}) by step {step} of the epoch"
            progress.step(step, [member], [mean])
            if member.failure is not None:
                break
    elapsed = time.perf_counter() - start
    return {"train_loss": [(loss_sum / max(step, 1)).item()], "examples": examples,
            "time_s": elapsed, "examples_per_s": examples / elapsed if elapsed else 0.0}
