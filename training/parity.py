"""The parity command: run it on your own device and precision before trusting a speed-up.

    python -m training.parity [--steps N] [--pack K] [train.py overrides ...]
    python -m training.parity model.name_or_path=roberta-base adapter=symlora device=cuda

It trains a few steps of the run the overrides describe (composed exactly as train.py composes them)
on the first batches of its training data, and prints one table:

(a) reference vs fused, dropout 0: the same run on both engines (training/engine.py); the largest
    difference of the logits and gradients over the steps, and of the trained tensors after them;
(b) pack vs alone, dropout on: a pack of K fused runs (seeds seed..seed+K-1) against each run
    trained alone on the fused engine; the same three;
(c) reference vs Transformers: the reference run's logits after the steps (eval mode) against a
    plain transformers model holding its merged weights (adapters/merge.py).

Where the fused engine is not allowed, (a) and (b) say so ("not applicable"). Exit status 1 if
any difference is over its tolerance (TOLERANCES, per precision as training/loop.py set_precision
names it), else 0.
"""
from __future__ import annotations

import argparse
import copy
import logging
import math
import sys

import torch
from transformers import AutoModelForSequenceClassification

import adapters
from glue import get_task
from training import engine
from training.config import compose, resolved
from training.data import RunData
from training.loop import fused_forward, set_precision, task_loss
from training.model import build_model, build_tokenizer
from training.pack import Member, build_pack
from training.reference import Solo
from training.run import pick_device, seed_everything

# The largest absolute difference accepted, per precision that runs. fp32 on a CPU: the fused
# engine re-orders sums (padding-free stream, fused matmuls), a few ulps over a few layers. TF32
# matmuls keep a 10-bit mantissa (~1e-3 relative); bf16 an 8-bit one (~4e-3 relative per rounding).
TOLERANCES = {"fp32": 1e-5, "fp32-tf32": 5e-3, "bf16": 5e-2}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    if set(a) != set(b):
        raise ValueError(f"the engines train different tensors: {sorted(set(a) ^ set(b))}")
    return max((float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].numel()), default=0.0)


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _batches(data: RunData, seed: int, steps: int) -> list[dict]:
    loader = data.train_loader(1, seed)
    if len(loader) < steps:
        raise ValueError(f"--steps {steps}: the training data has only {len(loader)} batches")
    out = []
    for batch in loader:
        if len(out) == steps:
            break
        out.append(batch)
    return out


def _schedule(cfg, steps: int) -> dict:
    return {"total_steps": steps, "warmup_steps": math.ceil(cfg.optim.warmup_ratio * steps)}


def train_reference(cfg, batches, num_labels, device, precision):
    """`steps` optimiser steps of the reference engine; (per-step logits, per-step gradients, model)."""
    model = build_model(cfg, num_labels).to(device)
    seed_everything(cfg.seed)
    solo, member = Solo(model), Member(cfg, None, {}, None)
    solo.prepare([member], device=device, **_schedule(cfg, len(batches)))
    from training.loop import forward
    logits, grads = [], []
    model.train()
    for batch in batches:
        out = forward(model, batch, device, precision)
        task_loss(out.unsqueeze(0), batch["labels"].to(device).unsqueeze(0)).sum().backward()
        logits.append(out.detach())
        grads.append({n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                      for n, p in model.named_parameters() if p.requires_grad})
        if cfg.optim.max_grad_norm:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.optim.max_grad_norm)
        member.optimizer.step()
        member.scheduler.step()
        member.optimizer.zero_grad(set_to_none=True)
    return logits, grads, model


def train_fused(cfgs, member_batches, num_labels, device, precision, pad_token_id):
    """The same steps for a pack of `cfgs` on the fused engine; per member: (per-step logits,
    per-step gradients, trained tensors)."""
    pack, members = build_pack(cfgs, [None] * len(cfgs), num_labels, device)
    pack.prepare(members, device=device, **_schedule(cfgs[0], len(member_batches[0])))
    bank, net = pack._bank, pack.net(members)
    runs, seeds = len(members), [c.seed for c in cfgs]
    logits = [[] for _ in members]
    grads = [[] for _ in members]
    net.train()
    for step, batches in enumerate(zip(*member_batches), start=1):
        size = len(batches[0]["labels"])
        out = fused_forward(net, list(batches), seeds, epoch=1, step=step,
                            device=device, precision=precision)
        labels = torch.stack([b["labels"] for b in batches]).to(device)
        task_loss(out.view(runs, size, -1), labels).sum().backward()
        for k in range(runs):
            logits[k].append(out.view(runs, size, -1)[k].detach())
            grads[k].append({name: (leaf.grad[k] if leaf.grad is not None else torch.zeros_like(leaf[k])).clone()
                             for name, leaf in zip(bank.names, bank.leaves)})
        bank.step(cfgs[0].optim.max_grad_norm)
    params = [_trainable(pack.use(m)) for m in members]
    pack.net(members)
    return [(logits[k], grads[k], params[k]) for k in range(runs)]


def _compare(one, other) -> tuple[float, float, float]:
    (l1, g1, p1), (l2, g2, p2) = one, other
    return (max(float((a.float() - b.float()).abs().max()) for a, b in zip(l1, l2)),
            max(_max_diff(a, b) for a, b in zip(g1, g2)),
            _max_diff(p1, p2))


def check(overrides: list[str], steps: int = 2, pack: int = 2) -> list[dict]:
    """The rows of the table: check, logits, gradients, parameters, tolerance, ok (or a note)."""
    base = resolved(compose(list(overrides)))
    task = get_task(base.task.name)
    device = pick_device(base.device)
    precision = set_precision(device, base.precision)
    tolerance = TOLERANCES[precision]
    tokenizer = build_tokenizer(base)
    data = RunData(base, task, tokenizer)
    quiet = resolved(compose([*overrides, "model.dropout=0", "adapter.dropout=0"]))
    refusal = engine.fused_refusal(_model_config(base), base.adapter.name)
    rows = []

    batches = _batches(data, quiet.seed, steps)
    ref_logits, ref_grads, model = train_reference(quiet, batches, task.num_labels, device, precision)
    reference = (ref_logits, ref_grads, _trainable(model))
    if refusal:
        rows.append({"check": "(a) reference vs fused, dropout 0", "note": f"not applicable: {refusal}"})
        rows.append({"check": f"(b) pack of {pack} vs alone, dropout on", "note": "not applicable"})
    else:
        (fused,) = train_fused([quiet], [batches], task.num_labels, device, precision, tokenizer.pad_token_id)
        rows.append(_row("(a) reference vs fused, dropout 0", _compare(reference, fused), tolerance))
        cfgs = [resolved(compose([*overrides, f"seed={base.seed + k}"])) for k in range(pack)]
        member_batches = [_batches(data, c.seed, steps) for c in cfgs]
        packed = train_fused(cfgs, member_batches, task.num_labels, device, precision, tokenizer.pad_token_id)
        alone = [train_fused([c], [b], task.num_labels, device, precision, tokenizer.pad_token_id)[0]
                 for c, b in zip(cfgs, member_batches)]
        worst = tuple(max(values) for values in zip(*(_compare(p, a) for p, a in zip(packed, alone))))
        # (the parameters are equal bit for bit on a CPU; a scalar's gradient, SymLoRA's λ, sums K
        # members' rows in another order: a few ulps)
        rows.append(_row(f"(b) pack of {pack} vs alone, dropout on", worst, tolerance))
    rows.append(_row("(c) reference vs Transformers (merged weights)",
                     (_plain_difference(model, batches, device, precision), 0.0, 0.0), tolerance))
    return rows


def _model_config(cfg):
    from transformers import AutoConfig

    from training.model import model_source
    return AutoConfig.from_pretrained(model_source(cfg))


@torch.no_grad()
def _plain_difference(model, batches, device, precision) -> float:
    """Logits of the trained reference model against a plain transformers model of the same class
    holding its merged weights (no adapter module left), in eval mode."""
    from training.loop import forward
    merged = adapters.merge(model)
    plain = AutoModelForSequenceClassification.from_config(copy.deepcopy(model.config)).to(device)
    missing, unexpected = plain.load_state_dict(merged.state_dict(), strict=False)
    if unexpected or [k for k in missing if k in dict(plain.named_parameters())]:
        raise ValueError(f"merged weights do not fit a plain {type(plain).__name__}: "
                         f"missing {missing}, unexpected {unexpected}")
    model.eval()
    plain.eval()
    return max(float((forward(model, b, device, precision).float()
                      - forward(plain, b, device, precision).float()).abs().max()) for b in batches)


def _row(name, diffs, tolerance) -> dict:
    logits, grads, params = diffs
    return {"check": name, "logits": logits, "gradients": grads, "parameters": params,
            "tolerance": tolerance, "ok": max(diffs) <= tolerance}


def table(rows: list[dict]) -> str:
    lines = [f"{'check':<48} {'logits':>10} {'gradients':>10} {'parameters':>10} {'tolerance':>10}  result"]
    for row in rows:
        if "note" in row:
            lines.append(f"{row['check']:<48} {row['note']}")
        else:
            lines.append(f"{row['check']:<48} {row['logits']:>10.2e} {row['gradients']:>10.2e} "
                         f"{row['parameters']:>10.2e} {row['tolerance']:>10.1e}  {'ok' if row['ok'] else 'OVER'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.parity", description=__doc__.split("\n\n")[0],
        epilog="Overrides are train.py's (python train.py --help lists them), e.g. adapter=symlora seed=3.")
    parser.add_argument("--steps", type=int, default=2, help="optimiser steps per run (default 2)")
    parser.add_argument("--pack", type=int, default=2, help="runs in the pack of check (b) (default 2)")
    parser.add_argument("overrides", nargs="*", help="train.py overrides (key=value)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    rows = check(args.overrides, steps=args.steps, pack=args.pack)
    print(table(rows))
    return 0 if all(row.get("ok", True) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
