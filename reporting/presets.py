"""Each paper's table: its layout, its tasks, which runs fill each row and which published rows sit beside.

One paper, one name: a paper preset ``<name>`` is the sweep grid ``configs/grid/<name>.yaml``, and that
grid names the experiment (``configs/experiment/<experiment>.yaml``) its runs are composed with. The
preset's protocol is that experiment: a row takes only runs whose metrics.json says
``experiment: <it>`` and whose ``grid`` is null (a hand-made run) or one of the grids of the same
experiment (DeLoRA Tables 1 and 2 share runs). Runs of other protocols are left out and counted.

Mapping rules (runs -> rows): a row takes the runs whose ``variant`` (collect.identify_variant), ``rank``
and, when given, ``frozen_init`` match. ``rank="published"`` takes, per task, the rank of the published
row (DeLoRA Table 1 prints rank 64, SST-2 32). ``rank=None`` accepts any rank (the setting selection then
picks among them). For ``frozen_init="orthogonal"`` a run that records no frozen init also matches.
Published rows are looked up by (source, table, method, task, split[, rank]) in published_results.csv.

Imports nothing heavy: ``report.py --help`` lists these names without loading pandas.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

GRID_DIR = Path(__file__).resolve().parent.parent / "configs" / "grid"
ALL_TASKS = ["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb"]


@dataclass(frozen=True)
class Entry:
    label: str
    variant: str
    rank: int | str | None = None          # int, "published" or None (any)
    split: str = "validation"              # "validation" (our seeds) or "test" (the test_scores CSV)
    pub: tuple[str, str, str] | None = None  # (source, table, method) in published_results.csv
    frozen_init: str | None = None
    required: bool = True                  # shown even without runs (ours "–"), e.g. a published baseline
    pub_label: str = "paper"               # the column/line of `pub`
    also: tuple[str, tuple[str, str, str]] | None = None  # a second published source: (label, key)
    protocol: str | None = None            # summary rows: only runs of this experiment ("" = none recorded)


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
    figure_variants: tuple[str, ...] = ()   # Figure 1 rows, top to bottom
    extra_variants: list[str] = field(default_factory=list)  # other groups of these variants -> extra rows
    average: str | None = None             # "paper" (the paper has the column) | "ours" (labelled ours) | None
    model: str | None = None               # substring the run's model must contain (runs with none pass)
    caption: str = ""                      # what a paper can keep under the table
    note: str = ""
    grid: str | None = None                # the sweep grid; set to ``name`` for a paper preset (one name)
    compare_each_to: str | None = None     # every row against this one (instead of `compare`'s pair)
    frontier: bool = False                 # the efficiency frontier figure (reporting/frontier.py)

    @property
    def experiment(self) -> str | None:
        return grid_experiment(self.grid) if self.grid else None

    @property
    def grids(self) -> tuple[str, ...]:
        """The grids whose runs are this preset's protocol: every grid of the same experiment."""
        exp = self.experiment
        return tuple(g for g in all_grids() if grid_experiment(g) == exp) if exp else ()


@lru_cache(maxsize=None)
def all_grids() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in GRID_DIR.glob("*.yaml")))


@lru_cache(maxsize=None)
def grid_experiment(grid: str) -> str | None:
    """The experiment a grid composes its runs with: its ``experiment`` key, the one home of the
    protocol (sweeping/grid.py makes it every run's first override)."""
    import yaml

    path = GRID_DIR / f"{grid}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"preset {grid!r} names the grid {path}, which does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    return None if data.get("experiment") is None else str(data["experiment"])


PRESETS: dict[str, Preset] = {}


def _add(p: Preset) -> None:
    """A paper preset: its name is its grid's (configs/grid/<name>.yaml), written once."""
    from dataclasses import replace

    PRESETS[p.name] = replace(p, grid=p.name)


_SYM = ("symlora_paper", "1")
_add(Preset(
    name="symlora_table1", title="SymLoRA paper, Table 1 (roberta-base, r = 8)",
    layout="tasks_as_rows",
    tasks=["cola", "qnli", "sst2", "mnli", "mnli_mm", "qqp", "rte", "mrpc", "stsb"],
    entries=[
        Entry("SymLoRA validation", "symlora", 8, "validation", (*_SYM, "symlora")),
        Entry("SymLoRA test", "symlora", 8, "test", (*_SYM, "symlora")),
        Entry("LoRA validation", "lora", 8, "validation", (*_SYM, "lora"), pub_label="SymLoRA paper (floored)",
              also=("LoRA paper", ("lora_paper", "2", "lora"))),
    ],
    ci="normal", center="mean", compare=("SymLoRA validation", "LoRA validation"),
    figure_variants=("symlora", "lora"), model="roberta-base",
    caption="SymLoRA and LoRA on GLUE with roberta-base (rank 8, query and value). Validation: mean over "
            "seeds ± 1.96·sd/√n, as in the SymLoRA paper; test: GLUE server score ± the Bernoulli "
            "half-width 1.96·√(p(1−p)/n) over the n test examples the score counts (– for Matthews and "
            "Pearson correlations). Metrics: CoLA Matthews correlation, STS-B Pearson correlation, "
            "others accuracy. Validation n: seeds with a score of all seeds run.",
    note="MNLI: the SymLoRA paper prints one number per split; its test ± 0.5 counts matched and "
         "mismatched together (n = 9,796 + 9,847). LoRA: the SymLoRA paper's copy of the LoRA paper's "
         "numbers is floored (QQP 90.8 → 90, RTE 86.6 → 86, MRPC 89.7 → 89); both are shown",
))

_add(Preset(
    name="delora_table1", title="DeLoRA report, Table 1 (roberta-base)",
    layout="methods_as_rows", tasks=["cola", "sst2", "qqp", "qnli", "mnli_all", "mrpc", "rte", "stsb"],
    entries=[
        Entry("Full FT", "full", None, pub=("lora_paper", "2", "full")),
        Entry("BitFit", "bitfit", None, pub=("lora_paper", "2", "bitfit")),
        Entry("Adapter (0.3M)", "adapter_0.3M", None, pub=("lora_paper", "2", "adapter_0.3M")),
        Entry("Adapter (0.9M)", "adapter_0.9M", None, pub=("lora_paper", "2", "adapter_0.9M")),
        Entry("LoRA (r=8)", "lora", 8, pub=("lora_paper", "2", "lora")),
        Entry("DeLoRA (rank as published)", "delora", "published", pub=("delora_report", "1", "delora")),
    ],
    ci="t", compare=("DeLoRA (rank as published)", "LoRA (r=8)"), average="ours", model="roberta-base",
    caption="DeLoRA (Dantuluri et al.: trainable Σ between frozen random B and A; not PEFT's DeLoRA) "
            "beside LoRA and the LoRA paper's Full FT, BitFit and Adapter (Houlsby, 0.3M and 0.9M) rows on "
            "GLUE with roberta-base. Ours: mean over seeds with the 95% Student-t interval. Trainable: "
            "adapter parameters; rank: DeLoRA's rank per task, as the report prints it. MNLI: overall "
            "accuracy over the matched and mismatched validation sets together (9,815 + 9,832 examples), "
            "as the report prints it (the LoRA paper's rows: matched).",
    note="baselines' published numbers from the LoRA paper, Table 2 (Adapter: Houlsby et al. as the LoRA paper "
         "reports them; the harness has no Adapter method); the average column is ours",
))

_add(Preset(
    name="delora_table2", title="DeLoRA report, Table 2 (ranks, roberta-base)",
    layout="methods_as_rows", tasks=["cola", "sst2", "qqp", "qnli", "mnli"],
    entries=[Entry(f"DeLoRA r={r}", "delora", r, pub=("delora_report", "2", "delora")) for r in (16, 32, 64)],
    ci="t", compare=("DeLoRA r=64", "DeLoRA r=16"), extra_variants=["delora"], average="ours",
    model="roberta-base",
    caption="DeLoRA (Dantuluri et al.; not PEFT's DeLoRA) at ranks 16, 32 and 64 on five GLUE tasks with "
            "roberta-base. Ours: mean over seeds with the 95% Student-t interval.",
    note="the report prints 1.5k trainable for r=16; the arithmetic gives 6,144; the average column is ours",
))

_add(Preset(
    name="delora_table3",
    title="DeLoRA report, Table 3 (LoRA of LoRA, from an MNLI LoRA, roberta-base)",
    layout="methods_as_rows", tasks=["mrpc", "rte", "stsb"],
    entries=[
        Entry("Head only on MNLI LoRA", "head_only_on_mnli_lora", None,
              pub=("delora_report", "3", "head_only_on_mnli_lora")),
        Entry("LoRA of LoRA", "delora_on_mnli_lora", None, pub=("delora_report", "3", "delora_on_mnli_lora")),
    ],
    ci="t", compare=("LoRA of LoRA", "Head only on MNLI LoRA"), model="roberta-base",
    caption="Starting from a LoRA trained on MNLI: training only a new head, or Σ (LoRA of LoRA, the "
            "MNLI LoRA's factors frozen) and a new head. Ours: mean over seeds with the 95% Student-t "
            "interval.",
))

_add(Preset(
    name="asymmetry",
    title="Asymmetry paper (Zhu et al.), B-only and A-only vs LoRA (roberta-large; GLUE without QQP)",
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
    average="paper", model="roberta-large",
    caption="B-only (A frozen at a random orthonormal matrix) and A-only against LoRA on GLUE without "
            "QQP, roberta-large from the pretrained model on every task. Ours: mean over seeds with "
            "the 95% Student-t interval; Avg.: unweighted mean over the seven tasks.",
    note="published: roberta-large averages from an unverified secondary source",
))

_LORA_ENTRIES = [
    Entry("LoRA (r=8)", "lora", 8, pub=("lora_paper", "2", "lora")),
    Entry("Full FT", "full", None, pub=("lora_paper", "2", "full")),
    Entry("BitFit", "bitfit", None, pub=("lora_paper", "2", "bitfit")),
]
_LORA_CAPTION = ("LoRA (rank 8 on query and value) on GLUE with roberta-base, {reading}. Ours: median over "
                 "seeds of each run's best epoch, as in the LoRA paper, with its distribution-free "
                 "order-statistic interval (coverage stated). Full FT and BitFit: the LoRA paper's.")
_add(Preset(
    name="lora_table2", title="LoRA paper, Table 2 (roberta-base rows; the table's batch)",
    layout="methods_as_rows", tasks=["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb"],
    entries=_LORA_ENTRIES, ci="order", center="median", compare=("LoRA (r=8)", "Full FT"), average="paper",
    model="roberta-base",
    caption=_LORA_CAPTION.format(reading="the table's batch size per optimiser step"),
))
_add(Preset(
    name="lora_table2_scripts",
    title="LoRA paper, Table 2 (roberta-base rows; the scripts' 8-process batch)",
    layout="methods_as_rows", tasks=["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb"],
    entries=_LORA_ENTRIES, ci="order", center="median", compare=("LoRA (r=8)", "Full FT"), average="paper",
    model="roberta-base",
    caption=_LORA_CAPTION.format(reading="8 × the table's batch size per optimiser step (the released "
                                         "scripts' 8 processes; one device accumulates 8 batches)"),
))

from .peft_zoo import PEFT_ZOO  # noqa: E402  (a module of its own: it needs Entry and Preset above)

_add(PEFT_ZOO)

SUMMARY_NAMES = ("all", "summary")
PAPER_PRESETS = list(PRESETS)


def summary_preset(name: str = "all") -> Preset:
    """Everything that is there: one row per (method, rank, frozen init, protocol), no published numbers."""
    return Preset(name=name, title="All runs (summary)", layout="methods_as_rows", tasks=[], entries=[],
                  ci="t", extra_variants=["*"], caption="Every group of runs found: mean over seeds with "
                  "the 95% Student-t interval.")


def grid_preset(grid: str) -> Preset:
    """A grid without a paper table (e.g. smoke): every group of runs of its protocol (the grid's
    experiment, and runs of the grids of that experiment or none), no published numbers."""
    return Preset(name=grid, grid=grid, title=f"Grid {grid} (every group of runs of its protocol)",
                  layout="methods_as_rows", tasks=[], entries=[], ci="t", extra_variants=["*"],
                  caption=f"The runs of grid {grid}'s protocol: mean over seeds with the 95% Student-t interval.")


def preset_names() -> list[str]:
    return PAPER_PRESETS + [g for g in all_grids() if g not in PRESETS] + list(SUMMARY_NAMES) + ["papers"]


def get_preset(name: str) -> Preset:
    """A paper preset, a grid's summary (any other grid in configs/grid/), or the summary of all runs."""
    if name in SUMMARY_NAMES:
        return summary_preset(name)
    if name in PRESETS:
        return PRESETS[name]
    if name in all_grids():
        return grid_preset(name)
    raise KeyError(f"unknown preset {name!r}; choose one of {preset_names()}")
