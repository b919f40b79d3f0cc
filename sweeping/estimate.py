"""What a sweep costs, before it runs: examples processed per run and GPU-hours.

A run processes ``epochs x train`` training examples, evaluates the validation split(s) every epoch
and predicts validation and test once at the end. A forward pass costs about a third of a training
step (no backward, no optimiser), so evaluation examples count ``EVAL_WEIGHT`` each::

    examples = epochs * train + EVAL_WEIGHT * (epochs * validation + validation + test)
    GPU-hours = examples / throughput / 3600

Sizes: the official GLUE sizes (glue/tasks.py) for the Hub and glue_dir sources, the actual row
counts of the files for ``data=sample``. ``throughput`` is training examples per
second per GPU for one adapter run: the default 900 is roberta-base LoRA, batch 32, length 128, bf16
on an H100 (docs: performance.md); the LoRA paper's length 512 runs at about half that.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from glue.tasks import TASKS, TaskSpec, get_task

EVAL_WEIGHT = 1 / 3
DEFAULT_THROUGHPUT = 900.0  # examples/s, H100, one LoRA run (roberta-base, B=32, L=128, bf16)


def _glue_sizes(spec: TaskSpec) -> tuple[int, int, int]:
    """(train, validation (all eval splits), test (all test splits, AX with MNLI)): official sizes."""
    test = sum(t.size(split) for t in (spec, *map(get_task, spec.predicts)) for split, _ in t.test_splits)
    return spec.size("train"), sum(spec.size(split) for split, _ in spec.eval_splits), test


#: (train, validation, test) of every task a run trains on, from glue/tasks.py
GLUE_SIZES: dict[str, tuple[int, int, int]] = {
    name: _glue_sizes(spec) for name, spec in TASKS.items() if "train" in spec.splits}


@lru_cache(maxsize=None)
def file_sizes(task: str, data_dir: str | None = None) -> tuple[int, int, int]:
    """Row counts of a task's files in a GLUE-layout folder (the bundled sample by default)."""
    from glue.loading import SAMPLE_DIR, glue_file_path, read_glue_tsv

    spec = get_task(task)
    root = Path(data_dir) if data_dir else SAMPLE_DIR
    counts = {"train": 0, "validation": 0, "test": 0}
    tasks = [spec, *map(get_task, spec.predicts)]
    for t in tasks:
        for split in t.splits:
            kind = "train" if split == "train" else "validation" if split.startswith("validation") else "test"
            try:
                columns, _ = read_glue_tsv(t, split, glue_file_path(t, split, root))
            except FileNotFoundError:
                continue
            counts[kind] += len(next(iter(columns.values()), []))
    return counts["train"], counts["validation"], counts["test"]


def sizes(cfg) -> tuple[int, int, int]:
    """(train, validation, test) examples of the run ``cfg`` (a resolved run config)."""
    task = cfg.task.name
    if cfg.data.source == "sample":
        return file_sizes(task, cfg.data.dir)
    if task not in GLUE_SIZES:
        raise KeyError(f"no GLUE size known for task {task!r}")
    return GLUE_SIZES[task]


def run_examples(cfg) -> float:
    train, validation, test = sizes(cfg)
    return cfg.epochs * train + EVAL_WEIGHT * (cfg.epochs * validation + validation + test)


@dataclass
class Estimate:
    runs: int
    examples: float
    throughput: float

    @property
    def gpu_hours(self) -> float:
        return self.examples / self.throughput / 3600


def estimate(cfgs, throughput: float = DEFAULT_THROUGHPUT) -> Estimate:
    cfgs = list(cfgs)
    if not throughput or throughput <= 0:
        raise ValueError(f"throughput must be > 0 examples/s, got {throughput}")
    return Estimate(len(cfgs), sum(run_examples(c) for c in cfgs), float(throughput))


def measured_throughput(metrics: list[dict]) -> float | None:
    """Median examples/s of finished runs (their metrics.json), None without any."""
    values = sorted(float(m["examples_per_s"]) for m in metrics
                    if m and m.get("status") == "done" and m.get("examples_per_s"))
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
