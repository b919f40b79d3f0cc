"""The fused bank: one step for K members equals torch's AdamW + clip_grad_norm_ + transformers'
linear warmup schedule applied to each member alone, and a member's state round-trips."""
import math

import pytest
import torch
from transformers import get_linear_schedule_with_warmup

from training.fused import Bank


def members(k):
    g = torch.Generator().manual_seed(k)
    return [("w", torch.nn.Parameter(torch.randn(3, 4, generator=g))),
            ("b", torch.nn.Parameter(torch.randn(4, generator=g)))]


@pytest.mark.parametrize("warmup", [0, 2])
def test_bank_steps_like_adamw_with_clipping_and_schedule_per_member(warmup):
    """warmup 0: the first step takes the full learning rate, as transformers' schedule gives it."""
    lrs, decays, total = [1e-2, 3e-2], [0.1, 0.0], 6
    params = [members(k) for k in range(2)]
    reference = [[(n, torch.nn.Parameter(p.detach().clone())) for n, p in m] for m in params]
    bank = Bank(params, [True, False], lrs=lrs, weight_decays=decays, betas=(0.9, 0.99), eps=1e-6,
                total_steps=total, warmup_steps=warmup, device="cpu")
    w, b = bank.stacked("w"), bank.stacked("b")
    optimizers = []
    for k, m in enumerate(reference):
        opt = torch.optim.AdamW([{"params": [m[0][1]], "weight_decay": decays[k]},
                                 {"params": [m[1][1]], "weight_decay": 0.0}], lr=lrs[k], betas=(0.9, 0.99), eps=1e-6)
        optimizers.append((opt, get_linear_schedule_with_warmup(opt, warmup, total)))
    x = torch.randn(5, 3)
    for step in range(total):
        for k, (_, schedule) in enumerate(optimizers):  # the rate this step takes
            assert math.isclose(bank.last_lr(k), schedule.get_last_lr()[0], rel_tol=1e-6)
        ((x @ w).add(b.unsqueeze(1)).pow(2).sum((1, 2)) * torch.tensor([1.0, 50.0])).sum().backward()
        bank.step(max_grad_norm=1.0)
        for k, (opt, schedule) in enumerate(optimizers):
            rw, rb = reference[k][0][1], reference[k][1][1]
            ((x @ rw + rb).pow(2).sum() * [1.0, 50.0][k]).backward()
            torch.nn.utils.clip_grad_norm_([rw, rb], 1.0)
            opt.step()
            schedule.step()
            opt.zero_grad()
            torch.testing.assert_close(params[k][0][1].detach(), rw.detach())  # the member's own view
            torch.testing.assert_close(params[k][1][1].detach(), rb.detach())
            assert math.isclose(bank.last_lr(k), schedule.get_last_lr()[0], rel_tol=1e-6)


def test_member_state_round_trips_and_a_dead_member_stays_finite():
    params = [members(k) for k in range(2)]
    bank = Bank(params, [True, False], lrs=[1e-2, 1e-2], weight_decays=[0.1, 0.1], betas=(0.9, 0.99), eps=1e-6,
                total_steps=4, warmup_steps=0, device="cpu")
    w, b = bank.stacked("w"), bank.stacked("b")
    w.grad, b.grad = torch.ones_like(w), torch.ones_like(b)
    w.grad[1] = math.nan
    bank.live[1] = False
    bank.step(max_grad_norm=None)
    assert torch.isfinite(bank.data).all() and bank.member_state(1)["step"] == 0
    state = bank.member_state(0)
    bank.load_member_state(1, state)
    assert torch.equal(bank.exp_avg[1], bank.exp_avg[0]) and bank.member_state(1)["step"] == 1


def test_a_tensor_without_gradient_is_left_as_torch_adamw_leaves_it():
    """torch's AdamW skips a parameter whose .grad is None: no decay, no moment update, no step
    counted (its bias corrections later use its own count). The bank does the same, per tensor."""
    lrs, total = [1e-2, 3e-2], 5
    params = [members(k) for k in range(2)]
    reference = [[(n, torch.nn.Parameter(p.detach().clone())) for n, p in m] for m in params]
    bank = Bank(params, [True, True], lrs=lrs, weight_decays=[0.1, 0.2], betas=(0.9, 0.99), eps=1e-6,
                total_steps=total, warmup_steps=0, device="cpu")
    w, b = bank.stacked("w"), bank.stacked("b")
    optimizers = [torch.optim.AdamW([p for _, p in m], lr=lrs[k], weight_decay=[0.1, 0.2][k], betas=(0.9, 0.99),
                                    eps=1e-6) for k, m in enumerate(reference)]
    schedules = [get_linear_schedule_with_warmup(opt, 0, total) for opt in optimizers]
    x = torch.randn(5, 3)
    for step in range(total):
        uses_b = step not in (1, 2)  # b gets no gradient at steps 1 and 2 (.grad None, not zero)
        before = b.detach().clone()
        out = x @ w
        (out.add(b.unsqueeze(1)) if uses_b else out).pow(2).sum().backward()
        bank.step(max_grad_norm=None)
        if not uses_b:
            assert torch.equal(b.detach(), before)  # exactly unchanged: decay skipped too
        for k, opt in enumerate(optimizers):
            rw, rb = reference[k][0][1], reference[k][1][1]
            out = x @ rw
            (out + rb if uses_b else out).pow(2).sum().backward()
            opt.step()
            schedules[k].step()
            opt.zero_grad(set_to_none=True)
            torch.testing.assert_close(params[k][0][1].detach(), rw.detach())
            torch.testing.assert_close(params[k][1][1].detach(), rb.detach())
    state = bank.member_state(1)
    assert state["tensor_steps"] == {"w": total, "b": total - 2} and state["step"] == total
