"""Training throughput: PEFT LoRA in a plain loop (the baseline of reference/performance.md) against
the harness's own loop, one run and packs of K runs, in one process on one device.

    python benchmarks/throughput.py                       # CUDA: roberta-base shapes, random weights
    python benchmarks/throughput.py --model tiny --steps 5 # CPU smoke run (CI), same output format

Nothing is downloaded: the models are built from a RobertaConfig. Sequence lengths follow a GLUE-like
distribution (log-normal, median 36 tokens, clipped to [5, L]: roughly the token lengths of MNLI/QQP,
which are 73% of the LoRA-paper pass); the baseline pads every batch to L, as in the reference.
FLOPs per real token for a frozen backbone with adapters: 4·N + 3·(4·L·d·layers) (reference/performance.md).
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import adapters  # noqa: E402
from training.loop import make_optimizer, make_scheduler, task_loss, train_epoch  # noqa: E402
from training.pack import Member, Pack  # noqa: E402

PEAKS = {"spec 989": 989e12, "measured 798": 798e12}  # H100 SXM dense bf16 TFLOP/s
LORA_PASS_EXAMPLES = 28.8e6  # one seed of the LoRA paper's 8-task GLUE pass (reference/performance.md)
OPTIM = SimpleNamespace(weight_decay=0.1, betas=(0.9, 0.999), eps=1e-6, warmup_ratio=0.06)


def model_config(name: str):
    from transformers import RobertaConfig
    if name == "roberta-base":
        return RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, num_labels=2,
                             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return RobertaConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=128, max_position_embeddings=514, type_vocab_size=1, num_labels=2,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def build(config, device):
    from transformers import RobertaForSequenceClassification
    torch.manual_seed(0)
    return RobertaForSequenceClassification(config).to(device)


def matmul_params(config) -> int:
    """N: the parameters that do matmul work per token (not the embeddings)."""
    d, f = config.hidden_size, config.intermediate_size
    return config.num_hidden_layers * (4 * d * d + 2 * d * f)


def batches(n: int, batch: int, max_len: int, vocab: int, bucket: int | None, seed: int) -> list[dict]:
    """n batches with GLUE-like lengths; padded to the batch's longest rounded up to `bucket`
    (None: always to max_len, as the baseline does)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        lengths = torch.exp(math.log(36) + 0.5 * torch.randn(batch, generator=g)).round().clamp(5, max_len).long()
        width = max_len if bucket is None else min(max_len, math.ceil(int(lengths.max()) / bucket) * bucket)
        mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        ids = torch.randint(3, vocab, (batch, width), generator=g) * mask + (1 - mask)  # pad id 1
        ids[:, 0] = 0
        out.append({"input_ids": ids, "attention_mask": mask,
                    "labels": torch.randint(0, 2, (batch,), generator=g)})
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(run_steps, warmup: int, steps: int, device) -> dict:
    """Time `run_steps(first, count)` over `steps` steps after `warmup` (compilation happens there)."""
    start = time.perf_counter()
    run_steps(0, warmup)
    sync(device)
    warm = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    run_steps(warmup, steps)
    sync(device)
    return {"seconds": time.perf_counter() - start, "warmup_s": warm}


def baseline(config, args, device) -> dict:
    """PEFT LoRA r=8 on q/v, a plain loop: autocast, AdamW, clipping, every batch padded to L."""
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(build(config, device), LoraConfig(r=8, lora_alpha=8, target_modules=["query", "value"],
                                                            task_type="SEQ_CLS"))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=5e-4, fused=device.type == "cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    model.train()

    def steps(first, count):
        for batch in data[first:first + count]:
            batch = {k: v.to(device) for k, v in batch.items()}
            with amp:
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            task_loss(logits, batch["labels"]).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    data = batches(args.warmup + args.steps, args.batch_size, args.max_len, config.vocab_size, None, 0)
    return report(measure(steps, args.warmup, args.steps, device), data[args.warmup:], 1, config, device)


def ours(config, args, device, runs: int, bucket: int | None) -> dict:
    """The harness's loop over a pack of `runs` LoRA runs (a pack of one is a plain run)."""
    model = build(config, device)
    adapters.inject(model, "lora", rank=8, alpha=8, targets=("query", "value"))
    pack = Pack(model, "classifier")
    first = pack.add(None, None, model)
    members = [first]
    for _ in range(runs - 1):  # the same shapes (the values do not matter for speed)
        layers = {name: copy.deepcopy(layer) for name, layer in first.layers.items()}
        for name, layer in layers.items():
            layer.base = first.layers[name].base
        members.append(Member(None, None, layers, copy.deepcopy(first.head)))
    pack.members = members
    total = (args.warmup + args.steps)
    for member in members:
        member.optimizer = make_optimizer(pack.use(member), 5e-4, OPTIM, device)
        member.scheduler = make_scheduler(member.optimizer, total, OPTIM.warmup_ratio)
    net = pack.use_pack(members)
    if args.compile:
        net = torch.compile(net, dynamic=False)
    progress = SimpleNamespace(step=lambda *a, **k: None)
    streams = [batches(total, args.batch_size, args.max_len, config.vocab_size, bucket, seed) for seed in range(runs)]

    def steps(first, count):
        train_epoch(net, members, [s[first:first + count] for s in streams], pad_token_id=1, device=device,
                    precision="bf16", max_grad_norm=1.0, log_every=10**9, progress=progress)

    timing = measure(steps, args.warmup, args.steps, device)
    return report(timing, [b for s in streams for b in s[args.warmup:]], runs, config, device)


def report(timing: dict, data: list[dict], runs: int, config, device) -> dict:
    examples = sum(len(b["labels"]) for b in data)
    real = sum(int(b["attention_mask"].sum()) for b in data)
    padded = sum(b["attention_mask"].numel() for b in data)
    n, d, layers = matmul_params(config), config.hidden_size, config.num_hidden_layers
    flops = sum(int(b["attention_mask"].sum()) * (4 * n + 3 * 4 * b["input_ids"].shape[1] * d * layers) for b in data)
    seconds = timing["seconds"]
    return {"runs": runs, "examples_s": examples / seconds, "real_tok_s": real / seconds,
            "padded_tok_s": padded / seconds, "tflops": flops / seconds / 1e12,
            "warmup_s": timing["warmup_s"],
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["roberta-base", "tiny"], default=None,
                        help="default: roberta-base on CUDA, tiny on CPU")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--packs", default="1,2,4,8,16", help="pack sizes K to measure")
    parser.add_argument("--batch-size", type=int, default=32, help="per run")
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--bucket", type=int, default=32, help="pad lengths up to a multiple of this")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile the packed model")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    config = model_config(args.model or ("roberta-base" if device.type == "cuda" else "tiny"))
    name = "roberta-base" if config.hidden_size == 768 else "tiny"
    print(f"# {name} on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"torch {torch.__version__}, batch {args.batch_size}/run, L <= {args.max_len}, bucket {args.bucket}, "
          f"{args.steps} timed steps after {args.warmup}, compile={args.compile}")
    rows = []
    if not args.no_baseline:
        rows.append(("PEFT LoRA, plain loop, padded to L", baseline(config, args, device)))
    rows.append(("ours, 1 run, padded to L", ours(config, args, device, 1, None)))
    for k in (int(x) for x in args.packs.split(",")):
        rows.append((f"ours, pack of {k}, dynamic padding", ours(config, args, device, k, args.bucket)))
    base = rows[0][1]["examples_s"]
    header = ("setup", "runs", "examples/s", "real tok/s", "padded tok/s", "MFU@989", "MFU@798",
              "peak GiB", "x baseline", "H100-h/seed", "warmup s")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for label, r in rows:
        mfu = [r["tflops"] * 1e12 / peak for peak in PEAKS.values()]
        hours = LORA_PASS_EXAMPLES / r["examples_s"] / 3600  # all K runs progress at once
        print(f"| {label} | {r['runs']} | {r['examples_s']:,.0f} | {r['real_tok_s']:,.0f} | "
              f"{r['padded_tok_s']:,.0f} | {mfu[0]:.1%} | {mfu[1]:.1%} | {r['peak_gib']:.2f} | "
              f"{r['examples_s'] / base:.2f} | {hours:.2f} | {r['warmup_s']:.1f} |")
    print("H100-h/seed: one seed of the LoRA-paper GLUE pass (28.8 M examples) at this total rate; "
          "MFU counts real tokens only.")
    return [r for _, r in rows]


if __name__ == "__main__":
    main()
