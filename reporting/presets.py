"""Each paper's table: its layout, its tasks, which runs fill each row and which published rows sit beside.

Mapping rules (runs -> rows): a row takes the runs whose ``variant`` (collect.identify_variant), ``rank``
and, when given, ``frozen_init`` match. ``rank="published"`` takes, per task, the rank of the published
row (DeLoRA Table 1 prints rank 64, SST-2 32). ``rank=None`` accepts any rank (the setting selection then
picks among them). For ``frozen_init="orthogonal"`` a run that records no frozen init also matches.
Published rows are looked up by (source, table, method, task, split[, rank]) in published_results.csv.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALL_TASKS = ["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb"]


@dataclass(frozen=True)
class Entry:
    label: str
    variant: str
    rank: int | str | None = None          # int, "published" or None (any)
    split: str = "validation"              # "validation" (our seeds) or "test" (the test_scores CSV)
    pub: tuple[str, str, str] | None = None  # (source, table, method) in published_results.csv
    frozen_init: str | None = None
    required: bool = True                  # shown even without runs (ours "–")


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    layout: str                            # "tasks_as_rows" or "methods_as_rows"
    tasks: list[str]
    entries: list[Entry]
    ci: str = "t"
    center: str = "mean"
    compare: tuple[str, str] | None = None  # two entry labels
    figure_variant: str | None = None
    extra_variants: list[str] = field(default_factory=list)  # other groups of these variants -> extra rows
    average: bool = False
    model: str | None = None               # substring the run's model must contain (runs with none pass)
    note: str = ""


PRESETS: dict[str, Preset] = {}


def _add(p: Preset) -> None:
    PRESETS[p.name] = p


_add(Preset(
    name="symlora_table1", title="SymLoRA paper, Table 1 (roberta-base, r = 8)", layout="tasks_as_rows",
    tasks=["cola", "qnli", "sst2", "mnli", "qqp", "rte", "mrpc", "stsb"],
    entries=[
        Entry("SymLoRA validation", "symlora", 8, "validation", ("symlora_paper", "1", "symlora")),
        Entry("SymLoRA test", "symlora", 8, "test", ("symlora_paper", "1", "symlora")),
        Entry("LoRA validation", "lora", 8, "validation", ("symlora_paper", "1", "lora")),
    ],
    ci="normal", center="mean", compare=("SymLoRA validation", "LoRA validation"),
    figure_variant="symlora", model="roberta-base",
    note="mean over seeds with 1.96*sd/sqrt(n) as in the paper; test half-width Bernoulli",
))

_add(Preset(
    name="delora_table1", title="DeLoRA report, Table 1 (methods with trainable counts)",
    layout="methods_as_rows", tasks=["cola", "sst2", "qqp", "qnli", "mnli", "mrpc", "rte", "stsb"],
    entries=[
        Entry("Full FT", "full", None, pub=("lora_paper", "2", "full"), required=False),
        Entry("BitFit", "bitfit", None, pub=("lora_paper", "2", "bitfit"), required=False),
        Entry("LoRA (r=8)", "lora", 8, pub=("lora_paper", "2", "lora")),
        Entry("DeLoRA (rank as published)", "delora", "published", pub=("delora_report", "1", "delora")),
    ],
    ci="t", compare=("DeLoRA (rank as published)", "LoRA (r=8)"), average=True, model="roberta-base",
    note="DeLoRA = Dantuluri et al.'s report (trainable Sigma between frozen B, A), not PEFT's DeLoRA "
         "(Bini et al., 2025); baselines' published numbers from the LoRA paper, Table 2",
))

_add(Preset(
    name="delora_table2", title="DeLoRA report, Table 2 (ranks)", layout="methods_as_rows",
    tasks=["cola", "sst2", "qqp", "qnli", "mnli"],
    entries=[Entry(f"DeLoRA r={r}", "delora", r, pub=("delora_report", "2", "delora")) for r in (16, 32, 64)],
    ci="t", compare=("DeLoRA r=64", "DeLoRA r=16"), extra_variants=["delora"], average=True,
    model="roberta-base",
    note="DeLoRA = Dantuluri et al.'s report, not PEFT's DeLoRA; the report prints 1.5k for r=16 (arithmetic: 6,144)",
))

_add(Preset(
    name="delora_table3", title="DeLoRA report, Table 3 (LoRA of LoRA, started from an MNLI LoRA)",
    layout="tasks_as_rows", tasks=["mrpc", "rte", "stsb"],
    entries=[
        Entry("Head only on MNLI LoRA", "head_only_on_mnli_lora", None,
              pub=("delora_report", "3", "head_only_on_mnli_lora")),
        Entry("LoRA of LoRA", "delora_on_mnli_lora", None, pub=("delora_report", "3", "delora_on_mnli_lora")),
    ],
    ci="t", compare=("LoRA of LoRA", "Head only on MNLI LoRA"), model="roberta-base",
    note="LoRA of LoRA = adapter=lora_of_lora; head only = adapter=lora_head_only (both from an MNLI LoRA run)",
))

_add(Preset(
    name="asymmetry", title="Asymmetry paper (Zhu et al.), B-only / A-only vs LoRA (GLUE average, no QQP)",
    layout="methods_as_rows", tasks=["mnli", "sst2", "mrpc", "cola", "qnli", "rte", "stsb"],
    entries=[
        Entry("LoRA (r=8)", "lora", 8, pub=("asymmetry_paper", "1", "lora")),
        Entry("B-only orthogonal (r=8)", "b_only", 8, pub=("asymmetry_paper", "1", "b_only_orthogonal"),
              frozen_init="orthogonal"),
        Entry("B-only orthogonal (r=16)", "b_only", 16, pub=("asymmetry_paper", "1", "b_only_orthogonal"),
              frozen_init="orthogonal"),
        Entry("A-only orthogonal (r=8)", "a_only", 8, pub=("asymmetry_paper", "1", "a_only_orthogonal"),
              frozen_init="orthogonal"),
        Entry("A-only orthogonal (r=16)", "a_only", 16, pub=("asymmetry_paper", "1", "a_only_orthogonal"),
              frozen_init="orthogonal"),
    ],
    ci="t", compare=("B-only orthogonal (r=8)", "LoRA (r=8)"), extra_variants=["b_only", "a_only", "lora"],
    average=True,
    note="published: roberta-large averages from an unverified secondary source; ours whatever model ran",
))

_add(Preset(
    name="lora_table2", title="LoRA paper, Table 2 (roberta-base rows)", layout="methods_as_rows",
    tasks=["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb"],
    entries=[
        Entry("LoRA (r=8)", "lora", 8, pub=("lora_paper", "2", "lora")),
        Entry("Full FT", "full", None, pub=("lora_paper", "2", "full"), required=False),
        Entry("BitFit", "bitfit", None, pub=("lora_paper", "2", "bitfit"), required=False),
    ],
    ci="t", center="median", compare=("LoRA (r=8)", "Full FT"), average=True, model="roberta-base",
    note="median over seeds of the best epoch, as in the LoRA paper",
))

SUMMARY_NAMES = ("all", "summary")
PAPER_PRESETS = ["symlora_table1", "delora_table1", "delora_table2", "delora_table3", "asymmetry", "lora_table2"]


def summary_preset(name: str = "all") -> Preset:
    """Everything that is there: one row per (method, rank, frozen init) group, no published numbers."""
    return Preset(name=name, title="All runs (summary)", layout="methods_as_rows", tasks=[], entries=[],
                  ci="t", extra_variants=["*"], average=False)


def get_preset(name: str) -> Preset:
    if name in SUMMARY_NAMES:
        return summary_preset(name)
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS) + list(SUMMARY_NAMES) + ['papers']}")
    return PRESETS[name]
