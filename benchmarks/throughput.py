"""Training throughput: the PEFT LoRA plain loop (the baseline of docs/performance.md) against the
harness's reference engine (training/reference.py: one run) and its fused engine (training/loop.py:
one run, and packs of K runs), timed alternately in
one process on one device; optionally K separate processes of one run each as a second comparator.

    python benchmarks/throughput.py --json results/throughput.json          # CUDA: roberta-base shapes
    python benchmarks/throughput.py --batch-size 16 --max-len 512            # the LoRA paper's MNLI/QQP shape
    python benchmarks/throughput.py --compile --processes 4                  # compiled; 4 lone processes too
    python benchmarks/throughput.py --model tiny --layers 12 --steps 4       # CPU: 12-layer structure, small

Nothing is downloaded: the models are built from a RobertaConfig with random weights. Sequence lengths
follow a GLUE-like distribution (log-normal, median 36 tokens, clipped to [5, L]: roughly MNLI/QQP,
73% of the LoRA-paper pass). The baseline pads every batch to L, as in the reference. Per setup it
prints and writes (`--json`): examples/s, real and processed tokens/s, their ratio, kernel launches
per step (benchmarks/launches.py), MFU against 798 TFLOP/s counting real tokens only (FLOPs per token
4·N + 3·4·len·d·layers for a frozen backbone), the H100-hours of one LoRA-paper seed (28.8 M training
examples) at that rate, and the ratio to the baseline measured in the same alternation.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.launches import count_host_syncs, count_launches  # noqa: E402
from training.loop import task_loss, train_epoch  # noqa: E402
from training.pack import Member, build_pack  # noqa: E402

PEAK_798 = 798e12  # H100 SXM dense bf16, a large matmul as measured (the spec says 989)
LORA_PASS_EXAMPLES = 28.8e6  # one seed of the LoRA paper's 8-task GLUE pass
FIELDS = ("setup", "runs", "examples_s", "real_tok_s", "processed_tok_s", "real_token_fraction",
          "launches_per_step", "host_syncs_per_step", "mfu_798", "h100_h_per_seed", "ratio_to_baseline")


def model_config(name: str, layers: int | None = None, dropout: float = 0.1):
    """roberta-base's or the tiny shape (random RoBERTa weights), or a local model folder's config."""
    from transformers import AutoConfig, RobertaConfig
    if name not in ("roberta-base", "tiny"):
        from adapters.targets import architecture
        config = AutoConfig.from_pretrained(name, num_labels=2)
        known = architecture(config.model_type)
        for key in (known.dropout_keys if known else ("hidden_dropout_prob", "attention_probs_dropout_prob")):
            setattr(config, key, dropout)
        if layers:
            config.num_hidden_layers = layers
        config.benchmark_folder = name
        return config
    shape = (dict(vocab_size=50265) if name == "roberta-base" else
             dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128))
    if layers:
        shape["num_hidden_layers"] = layers
    return RobertaConfig(**shape, max_position_embeddings=514, type_vocab_size=1, num_labels=2,
                         hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)


def build(config, device):
    from transformers import AutoModelForSequenceClassification
    torch.manual_seed(0)
    folder = getattr(config, "benchmark_folder", None)
    if folder:  # the folder's pretrained weights, a fresh head
        return AutoModelForSequenceClassification.from_pretrained(folder, config=config).to(device)
    return AutoModelForSequenceClassification.from_config(config).to(device)


def run_config(config, args, seed: int):
    """The train.py configuration of one benchmarked run (training/config.py compose), so that a pack is
    assembled exactly as training assembles it (training/pack.py build_pack): the local folder's
    weights, or random weights from `config` (written to a folder for the purpose)."""
    from training.config import compose
    pretrained = getattr(config, "benchmark_folder", None)
    folder = pretrained or getattr(config, "benchmark_config_folder", None)
    if folder is None:
        folder = config.benchmark_config_folder = tempfile.mkdtemp(prefix="throughput-config-")
        config.to_json_file(str(Path(folder) / "config.json"))
    return compose([f"model.name_or_path={folder}", f"model.random_init={pretrained is None}",
                    "task=sst2", f"adapter={args.method}", "adapter.rank=8", "adapter.alpha=8",
                    f"adapter.dropout={args.dropout}", f"model.dropout={args.dropout}", f"seed={seed}", "lr=5e-4"])


def targets(model) -> tuple[str, ...]:
    """The query and value projections' module names (adapters/targets.py)."""
    from adapters.targets import resolve_targets
    return resolve_targets(model, ("query", "value"))


def matmul_params(config) -> int:
    """N: the parameters that do matmul work per token (not the embeddings)."""
    d, f = config.hidden_size, config.intermediate_size
    return config.num_hidden_layers * (4 * d * d + 2 * d * f)


def batches(n: int, batch: int, max_len: int, config, seed: int, pad_to_max: bool) -> list[dict]:
    """n batches with GLUE-like lengths, each padded to its longest (or to max_len); sentence pairs
    (token types 0 then 1, from the middle on) for a model with token types."""
    vocab, pad = config.vocab_size, config.pad_token_id if config.pad_token_id is not None else 1
    pairs = getattr(config, "type_vocab_size", 1) > 1
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        lengths = torch.exp(math.log(36) + 0.5 * torch.randn(batch, generator=g)).round().clamp(5, max_len).long()
        width = max_len if pad_to_max else int(lengths.max())
        mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        ids = torch.randint(3, vocab, (batch, width), generator=g) * mask + pad * (1 - mask)
        ids[:, 0] = 0
        out.append({"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (batch,), generator=g)})
        if pairs:
            out[-1]["token_type_ids"] = (torch.arange(width)[None, :] >= (lengths[:, None] // 2)).long() * mask
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Setup:
    """One measured setup: `run(first, count)` trains on batches [first, first + count) of each member;
    `processed(first, count)` counts the tokens it computes on (padding included)."""
    label: str
    runs: int
    streams: list[list[dict]]

    def processed(self, first: int, count: int) -> int:
        """Padded to the longest of the step's sub-batches (the baseline: to L)."""
        return sum(self.runs * b["input_ids"].shape[0] * max(s[i]["input_ids"].shape[1] for s in self.streams)
                   for i, b in enumerate(self.streams[0][first:first + count], start=first))


class Baseline(Setup):
    """PEFT LoRA r=8 on q/v, a plain loop: autocast, AdamW, clipping, every batch padded to L."""

    def __init__(self, config, args, device, total: int):
        from peft import LoraConfig, get_peft_model
        self.label, self.runs, self.device = "PEFT LoRA, plain loop, padded to L", 1, device
        model = build(config, device)
        self.model = get_peft_model(model, LoraConfig(
            r=8, lora_alpha=8, target_modules=list(targets(model)), lora_dropout=args.dropout, task_type="SEQ_CLS"))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=5e-4, fused=True)  # one kernel, as on CUDA
        self.streams = [batches(total, args.batch_size, args.max_len, config, 0, pad_to_max=True)]
        self.model.train()

    def run(self, first: int, count: int) -> None:
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        for batch in self.streams[0][first:first + count]:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with amp:
                logits = self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            task_loss(logits, batch["labels"]).backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)


class Ours(Setup):
    """The harness's training step over a pack of `runs` runs of `args.method` (LoRA by default; a lone
    run is a pack of one)."""

    def __init__(self, config, args, device, runs: int, total: int):
        self.label, self.runs, self.device = (f"fused engine, pack of {runs}" if runs > 1 else "fused engine, 1 run",
                                              runs, device)
        self.pack, _ = build_pack([run_config(config, args, seed) for seed in range(runs)], [None] * runs,
                                  config.num_labels, device)
        self.members = self.pack.members  # (seeds 0..K-1: other heads and adapters, the same shapes)
        self.bank = self.pack.bank(self.members, total_steps=total, warmup_steps=math.ceil(0.06 * total),
                                   device=device)
        self.net = self.pack.use_pack(self.members, self.bank)
        if args.compile:
            self.net = torch.compile(self.net, dynamic=None)
        self.streams = [batches(total, args.batch_size, args.max_len, config, k, pad_to_max=False)
                        for k in range(runs)]
        self.progress = SimpleNamespace(step=lambda *a, **k: None)

    def processed(self, first: int, count: int) -> int:
        """The token stream is padding-free (training/flat.py): every linear layer sees real tokens
        only (attention alone re-pads each sequence to the step's longest)."""
        return sum(int(b["attention_mask"].sum()) for s in self.streams for b in s[first:first + count])

    def run(self, first: int, count: int) -> None:
        train_epoch(self.net, self.members, self.bank, [s[first:first + count] for s in self.streams], epoch=1,
                    pad_token_id=1, device=self.device, precision="bf16", max_grad_norm=1.0,
                    log_every=10**9, progress=self.progress)


class Reference(Setup):
    """The reference engine (training/reference.py): one run of `args.method` through Transformers'
    own forward and nn.Dropout, torch's AdamW, transformers' schedule; batches padded to their longest."""

    def __init__(self, config, args, device, total: int):
        from training.reference import Solo
        self.label, self.runs, self.device = "reference engine, 1 run", 1, device
        from training.model import build_model
        cfg = run_config(config, args, seed=0)  # built as training builds a lone run
        self.solo = Solo(build_model(cfg, config.num_labels).to(device))
        self.member = Member(cfg, None, {}, None)
        self.solo.prepare([self.member], total_steps=total, warmup_steps=math.ceil(0.06 * total), device=device)
        self.streams = [batches(total, args.batch_size, args.max_len, config, 0, pad_to_max=False)]
        self.progress = SimpleNamespace(step=lambda *a, **k: None)

    def run(self, first: int, count: int) -> None:
        from training.reference import train_epoch as reference_epoch
        reference_epoch(self.solo.model, self.member, self.streams[0][first:first + count], device=self.device,
                        precision="bf16", max_grad_norm=1.0, log_every=10**9, progress=self.progress)


def measure(setups: list[Setup], args, device) -> list[dict]:
    """Warm every setup up, count its launches, then time them round-robin: `rounds` rounds of
    `steps` steps each, so that drifts of the machine hit them all alike."""
    stats = {id(s): {"seconds": 0.0, "first": [], "warmup_s": 0.0} for s in setups}
    for setup in setups:
        start = time.perf_counter()
        setup.run(0, args.warmup)
        sync(device)
        stats[id(setup)]["warmup_s"] = time.perf_counter() - start
        launches, ops = count_launches(setup.run, args.warmup, 2)
        stats[id(setup)]["launches_per_step"] = launches / 2
        syncs, kinds = count_host_syncs(setup.run, args.warmup + 2, 2)
        stats[id(setup)]["host_syncs_per_step"] = syncs / 2
        stats[id(setup)]["host_syncs"] = dict(kinds)
        stats[id(setup)]["top_ops"] = dict(ops.most_common(8))
    position = args.warmup + 4
    for _ in range(args.rounds):
        for setup in setups:
            sync(device)
            start = time.perf_counter()
            setup.run(position, args.steps)
            sync(device)
            stats[id(setup)]["seconds"] += time.perf_counter() - start
            stats[id(setup)]["first"].append(position)
        position += args.steps
    return [summarise(setup, stats[id(setup)], args) for setup in setups]


def summarise(setup: Setup, stat: dict, args) -> dict:
    examples = real = processed = flops = 0
    config, seconds = args.config, stat["seconds"]
    n, d, layers = matmul_params(config), config.hidden_size, config.num_hidden_layers
    for first in stat["first"]:
        processed += setup.processed(first, args.steps)
        for stream in setup.streams:
            for b in stream[first:first + args.steps]:
                lengths = b["attention_mask"].sum(1)
                examples += len(b["labels"])
                real += int(lengths.sum())
                flops += int((lengths * (4 * n + 12 * lengths * d * layers)).sum())
    rate = examples / seconds
    return {"setup": setup.label, "runs": setup.runs, "examples_s": rate, "real_tok_s": real / seconds,
            "processed_tok_s": processed / seconds, "real_token_fraction": real / processed,
            "launches_per_step": stat["launches_per_step"], "host_syncs_per_step": stat["host_syncs_per_step"],
            "host_syncs": stat["host_syncs"], "mfu_798": flops / seconds / PEAK_798,
            "h100_h_per_seed": LORA_PASS_EXAMPLES / rate / 3600, "warmup_s": stat["warmup_s"],
            "top_ops": stat["top_ops"]}


def separate_processes(count: int, argv: list[str]) -> dict:
    """`count` lone runs in as many processes at once; their summed rate."""
    worker = [sys.executable, __file__, *argv, "--packs", "1", "--no-baseline", "--no-reference", "--processes", "0",
              "--worker", "--json", "-"]
    procs = [subprocess.Popen(worker, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    rows = [json.loads(p.communicate()[0].strip().splitlines()[-1])[0] for p in procs]
    total = {k: sum(r[k] for r in rows) for k in ("examples_s", "real_tok_s", "processed_tok_s", "mfu_798")}
    return {"setup": f"{count} separate processes, 1 run each", "runs": count, **total,
            "real_token_fraction": total["real_tok_s"] / total["processed_tok_s"],
            "launches_per_step": rows[0]["launches_per_step"], "h100_h_per_seed": LORA_PASS_EXAMPLES / total["examples_s"] / 3600}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="roberta-base or tiny (random RoBERTa weights), or a local model folder "
                             "(its pretrained weights; token types for a model with them). "
                             "Default: roberta-base on CUDA, tiny on CPU")
    parser.add_argument("--layers", type=int, default=None, help="override the number of layers (12: roberta-base's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--packs", default="1,8,16", help="pack sizes K to measure")
    parser.add_argument("--batch-size", type=int, default=32, help="per run (16: the LoRA paper's MNLI and QQP)")
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.1, help="hidden, attention and adapter dropout")
    parser.add_argument("--method", default="lora", choices=["lora", "symlora", "delora", "b_only"],
                        help="our adapter (the baseline is PEFT's LoRA whatever this says)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of alternation between the setups")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile our packed model")
    parser.add_argument("--processes", type=int, default=0, help="also time this many separate lone processes")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="leave out the reference engine's run")
    parser.add_argument("--json", default=None, help="write the rows to this file ('-': stdout)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    args.config = config = model_config(args.model or ("roberta-base" if device.type == "cuda" else "tiny"),
                                        args.layers, args.dropout)
    total = args.warmup + 4 + args.rounds * args.steps
    setups: list[Setup] = [] if args.no_baseline else [Baseline(config, args, device, total)]
    setups += [] if args.no_reference else [Reference(config, args, device, total)]
    from training.engine import fused_refusal
    refusal = fused_refusal(config, args.method)
    if refusal:  # engine=auto trains it on the reference engine; a pack's runs one after another
        print(f"# fused engine not measured: {refusal}", file=sys.stderr)
    else:
        setups += [Ours(config, args, device, int(k), total) for k in args.packs.split(",")]
    rows = measure(setups, args, device)
    if args.processes:
        passed = [a for a in (argv if argv is not None else sys.argv[1:])]
        rows.append(separate_processes(args.processes, strip_options(passed, ("--json", "--packs", "--processes"))))
    base = rows[0]["examples_s"] if not args.no_baseline else float("nan")
    for row in rows:
        row["ratio_to_baseline"] = row["examples_s"] / base
    if args.json == "-":
        print(json.dumps(rows))
        return rows
    describe = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# {config.num_hidden_layers} layers × d={config.hidden_size} on {describe}, torch {torch.__version__}, "
          f"batch {args.batch_size}/run, L <= {args.max_len}, dropout {args.dropout}, "
          f"{args.rounds}×{args.steps} timed steps after {args.warmup}, compile={args.compile}")
    header = ("setup", "runs", "examples/s", "real tok/s", "processed tok/s", "real/processed", "launches/step",
              "host syncs/step", "MFU@798", "H100-h/seed", "x baseline")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['setup']} | {r['runs']} | {r['examples_s']:,.0f} | {r['real_tok_s']:,.0f} | "
              f"{r['processed_tok_s']:,.0f} | {r['real_token_fraction']:.2f} | {r['launches_per_step']:,.0f} | "
              f"{r.get('host_syncs_per_step', float('nan')):.1f} | "
              f"{r['mfu_798']:.1%} | {r['h100_h_per_seed']:.2f} | {r['ratio_to_baseline']:.2f} |")
    print("MFU counts real tokens only; H100-h/seed: one seed of the LoRA-paper GLUE pass at this total rate.")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def strip_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not a.startswith(tuple(f"{n}=" for n in names)):
            out.append(a)
    return out


if __name__ == "__main__":
    main()
