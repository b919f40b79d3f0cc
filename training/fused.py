"""Horizontal fusion of K runs' optimisation (the technique of HFTA, Wang et al., MLSys 2021): every
trainable tensor of every member lives in one fp32 bank of shape (K, P), row k holding member k's
parameters flattened in a fixed order. Two kinds of views share that storage:

- each member's own parameters are views of its row (so saving, loading, norms and counting on a
  member's modules read and write the bank, and its files look exactly like a lone run's);
- the packed modules' K-stacked parameters are views of column blocks (adapters/packed.py), the
  leaves that training differentiates.

One step for all members is then a fixed number of kernels whatever K is: the gradients gathered
into one (K, P) matrix, per-member clipping from one row-wise norm, AdamW with per-member learning
rate, weight decay and bias corrections as tensors, and the linear warmup-decay schedule as tensors.
A lone run is a bank of one and goes through exactly the same code.
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import nn


def decayed(model: nn.Module) -> dict[int, bool]:
    """Whether weight decay applies to each trainable parameter (by id): not on biases, LayerNorm
    weights or scalars (SymLoRA's λ: decay would pull it, and with it W0, towards zero), as the Hugging
    Face Trainer and the LoRA reference code do."""
    layer_norm = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    return {id(p): not (name.endswith("bias") or p.ndim == 0 or id(p) in layer_norm)
            for name, p in model.named_parameters() if p.requires_grad}


class Bank:
    """The trainable tensors and AdamW state of K members, and their fused step."""

    def __init__(self, members: list[list[tuple[str, nn.Parameter]]], decay: list[bool], *, lrs, weight_decays,
                 betas, eps: float, total_steps: int, warmup_steps: int, device):
        """`members[k]`: member k's trainable (name, parameter) pairs, the same names and shapes for
        every member; `decay[i]`: whether the i-th takes weight decay. The members' parameters are
        re-pointed to their rows of the bank (their values kept)."""
        self.names = [name for name, _ in members[0]]
        for k, params in enumerate(members[1:], start=1):
            if [n for n, _ in params] != self.names:
                raise ValueError(f"member {k} of the pack has other trainable tensors than member 0")
        self.shapes = [tuple(p.shape) for _, p in members[0]]
        sizes = [math.prod(shape) for shape in self.shapes]
        self.offsets = [0, *itertools.accumulate(sizes)]
        self.runs, width = len(members), self.offsets[-1]
        self.data = torch.empty(self.runs, width, device=device, dtype=torch.float32)
        with torch.no_grad():
            for k, params in enumerate(members):
                for i, (_, p) in enumerate(params):
                    view = self.data[k, self.offsets[i]:self.offsets[i + 1]].view(self.shapes[i])
                    view.copy_(p.detach())
                    p.data = view
        self.exp_avg = torch.zeros_like(self.data)
        self.exp_avg_sq = torch.zeros_like(self.data)
        self.steps = torch.zeros(self.runs, 1, device=device)
        column = lambda values: torch.tensor(values, dtype=torch.float32, device=device).view(-1, 1)  # noqa: E731
        self.lr = column(lrs)
        flags = torch.cat([torch.full((n,), float(d), device=device) for n, d in zip(sizes, decay)])
        self.weight_decay = column(weight_decays) * flags  # (K, P): per member, zero where not decayed
        self.live = torch.ones(self.runs, 1, dtype=torch.bool, device=device)
        self._zero = torch.zeros((), device=device)  # what a failed member's gradient becomes (no per-step scalar)
        self.betas, self.eps = tuple(betas), eps
        self.total, self.warmup = total_steps, warmup_steps
        self.leaves: list[nn.Parameter] = []  # what training differentiates, in bank order
        # each tensor's own step count (K, tensors), as torch's AdamW keeps one per parameter: only
        # once some tensor has had a step without gradient (until then every count is `steps`)
        self.leaf_steps: torch.Tensor | None = None
        self._sizes = torch.tensor(sizes, device=device)

    # views ------------------------------------------------------------------------------------
    def stacked(self, name: str) -> nn.Parameter:
        """Member tensors `name` of all K runs as one (K, *shape) parameter over the bank."""
        i = self.names.index(name)
        leaf = nn.Parameter(self.data[:, self.offsets[i]:self.offsets[i + 1]].view(self.runs, *self.shapes[i]))
        self._set_leaf(i, leaf)
        return leaf

    def own_leaves(self, params: list[nn.Parameter]) -> None:
        """Train the member's own parameters (a bank of one that is not packed: bitfit, full)."""
        for i, p in enumerate(params):
            self._set_leaf(i, p)

    def _set_leaf(self, i: int, leaf: nn.Parameter) -> None:
        if not self.leaves:
            self.leaves = [None] * len(self.names)
        self.leaves[i] = leaf

    # the schedule -------------------------------------------------------------------------------
    def factor(self, steps):
        """Linear warmup then linear decay to 0 (transformers' get_linear_schedule_with_warmup)."""
        fall = (self.total - steps) / max(1, self.total - self.warmup)
        if self.warmup == 0:  # no warmup: the first step takes the full rate, as transformers' schedule gives
            return fall.clamp(min=0.0) if isinstance(steps, torch.Tensor) else max(0.0, fall)
        rise = steps / self.warmup
        if isinstance(steps, torch.Tensor):
            return torch.minimum(rise, fall).clamp(min=0.0)
        return max(0.0, min(rise, fall))

    def last_lr(self, k: int) -> float:
        """Member k's learning rate for its next step (what a scheduler's get_last_lr() says)."""
        return float(self.lr[k]) * self.factor(float(self.steps[k]))

    # the step -----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, max_grad_norm: float | None) -> None:
        """Clip each member's gradient to `max_grad_norm` (its own norm), then one AdamW step of
        every live member; the gradients are cleared. A tensor without gradient (``.grad is None``)
        is left exactly as it is, moments and step count included, as torch's AdamW skips it."""
        missing = [leaf.grad is None for leaf in self.leaves]
        grad = torch.cat([(leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)).reshape(self.runs, -1)
                          for leaf in self.leaves], dim=1)
        for leaf in self.leaves:
            leaf.grad = None
        grad = torch.where(self.live, grad, self._zero)  # a failed member's NaNs stop here
        if max_grad_norm:
            norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
            grad.mul_((max_grad_norm / (norm + 1e-6)).clamp(max=1.0))
        lr = self.lr * self.factor(self.steps) * self.live
        self.steps.add_(self.live)  # (bool: 1 for a live member)
        if any(missing) and self.leaf_steps is None:
            self.leaf_steps = (self.steps - self.live.float()).expand(-1, len(self.leaves)).clone()
        if self.leaf_steps is None:  # every tensor has stepped every time: one count per member
            self._adamw(self.data, self.exp_avg, self.exp_avg_sq, grad, lr, self.weight_decay, self.steps)
            return
        stepped = torch.tensor([not m for m in missing], device=self.data.device)  # (tensors,), from the host
        self.leaf_steps.add_(self.live & stepped)
        counts = self.leaf_steps.repeat_interleave(self._sizes, dim=1, output_size=self.data.shape[1])
        columns = stepped.repeat_interleave(self._sizes, output_size=self.data.shape[1])  # (P,): no sync for the size
        data, exp_avg, exp_avg_sq = self.data.clone(), self.exp_avg.clone(), self.exp_avg_sq.clone()
        self._adamw(data, exp_avg, exp_avg_sq, grad, lr, self.weight_decay, counts)
        for mine, new in ((self.data, data), (self.exp_avg, exp_avg), (self.exp_avg_sq, exp_avg_sq)):
            mine.copy_(torch.where(columns, new, mine))

    def _adamw(self, data, exp_avg, exp_avg_sq, grad, lr, weight_decay, counts) -> None:
        """torch's AdamW (decoupled decay, bias-corrected moments) in place, every tensor a (K, ·)
        column block; `counts`: the step number each column has reached (this step included)."""
        beta1, beta2 = self.betas
        data.mul_(1.0 - lr * weight_decay)
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        counted = counts.clamp(min=1.0)  # a member failed before its first step: no 0/0
        correction1 = 1.0 - torch.pow(beta1, counted)
        correction2 = 1.0 - torch.pow(beta2, counted)
        denom = (exp_avg_sq.sqrt() / correction2.sqrt()).add_(self.eps)
        data.addcdiv_(exp_avg * (lr / correction1), denom, value=-1.0)

    # per-member state, for checkpoints ------------------------------------------------------------
    def member_state(self, k: int) -> dict:
        split = lambda t: {n: t[k, a:b].view(s).clone() for n, a, b, s in  # noqa: E731
                           zip(self.names, self.offsets, self.offsets[1:], self.shapes)}
        state = {"step": int(self.steps[k]), "exp_avg": split(self.exp_avg), "exp_avg_sq": split(self.exp_avg_sq)}
        if self.leaf_steps is not None:  # some tensor has skipped a step: its own count
            state["tensor_steps"] = dict(zip(self.names, (int(n) for n in self.leaf_steps[k].tolist())))
        return state

    @torch.no_grad()
    def load_member_state(self, k: int, state: dict) -> None:
        for key in ("exp_avg", "exp_avg_sq"):
            if set(state[key]) != set(self.names):
                raise KeyError(f"optimiser state has tensors {sorted(state[key])}, the run has {self.names}")
            for n, a, b in zip(self.names, self.offsets, self.offsets[1:]):
                getattr(self, key)[k, a:b].copy_(state[key][n].reshape(-1))
        self.steps[k] = state["step"]
        if "tensor_steps" in state or self.leaf_steps is not None:
            if self.leaf_steps is None:
                self.leaf_steps = self.steps.expand(-1, len(self.names)).clone()
            counts = state.get("tensor_steps", {})
            self.leaf_steps[k] = torch.tensor([counts.get(n, state["step"]) for n in self.names],
                                              dtype=self.leaf_steps.dtype)


class MemberOptimizer:
    """Member k's slice of a bank, with an optimiser's state_dict()/load_state_dict() (checkpoints)."""

    def __init__(self, bank: Bank, k: int):
        self.bank, self.k = bank, k

    def state_dict(self) -> dict:
        return self.bank.member_state(self.k)

    def load_state_dict(self, state: dict) -> None:
        self.bank.load_member_state(self.k, state)


class MemberSchedule:
    """Member k's schedule (its position is the optimiser's step count): what checkpoints and epoch
    records ask of a scheduler."""

    def __init__(self, bank: Bank, k: int):
        self.bank, self.k = bank, k

    def state_dict(self) -> dict:
        return {"step": int(self.bank.steps[self.k])}

    def load_state_dict(self, state: dict) -> None:
        if state["step"] != int(self.bank.steps[self.k]):
            raise ValueError(f"schedule at step {state['step']} but optimiser at {int(self.bank.steps[self.k])}")

    def get_last_lr(self) -> list[float]:
        return [self.bank.last_lr(self.k)]
