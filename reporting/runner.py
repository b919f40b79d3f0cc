"""Orchestration behind ``report.py``: collect -> per preset build -> tables, comparison, figures, zip."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import pandas as pd

from .build import Options, PresetResult, build_preset
from .collect import collect_runs, load_choices
from .figures import bar_chart, layer_norm_figure, learning_curves
from .frontier import frontier_figure
from .presets import PAPER_PRESETS, Preset, get_preset
from .published import ReportInputError, load_published, load_test_scores
from .selection import best_seed_run
from .statistics import BOOTSTRAP_MIN_SEEDS, CI_DESCRIPTION
from .submission import SubmissionError, collect_prediction_files, write_submission
from .tables import to_markdown, write_tables


CHOICES = {"ci": (None, *CI_DESCRIPTION), "center": (None, "mean", "median"),
           "selection": ("best_epoch", "last_epoch"), "setting": ("sweep", "best_mean")}


@dataclass
class ReportOptions:
    """Every option of ``report.py`` (configs/report.yaml documents each)."""
    results_dir: str | Path = "results"
    preset: str = "all"
    ci: str | None = None
    center: str | None = None
    selection: str = "best_epoch"
    setting: str = "sweep"
    grid: str | None = None
    test_scores: str | None = None
    published: str | None = None
    compare: list[str] | None = None
    alpha: float = 0.05
    equivalence_margin: float = 1.0
    expected_seeds: int | None = None
    bootstrap_samples: int = 10000
    bootstrap_seed: int = 0
    figures: bool = True
    figure_method: str | None = None
    submission: bool = True
    submission_partial: bool = False

    @classmethod
    def from_mapping(cls, values: dict) -> "ReportOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ReportInputError(f"unknown report option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def __post_init__(self) -> None:
        """Every value checked before any work: ``figures=flase`` or ``ci=tt`` is an error naming the key
        and what it accepts, not a silent default."""
        problems = []
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if f.name in CHOICES:
                ok, accepts = value in CHOICES[f.name], " | ".join(map(str, CHOICES[f.name]))
            elif kind == "bool":
                ok, accepts = isinstance(value, bool), "true | false"
            elif kind.startswith("int"):
                ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
                    value is None and "None" in kind)
                accepts = "an integer ≥ 0" + (" or null" if "None" in kind else "")
            elif kind == "float":
                ok, accepts = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, "a number > 0"
            else:
                continue
            if not ok:
                problems.append(f"{f.name}={value!r}: expected {accepts}")
        if problems:
            raise ReportInputError("invalid option(s):\n  " + "\n  ".join(problems))

    def build_options(self) -> Options:
        return Options(ci=self.ci, center=self.center, selection=self.selection, setting=self.setting,
                       expected_seeds=self.expected_seeds, n_boot=self.bootstrap_samples,
                       boot_seed=self.bootstrap_seed, alpha=self.alpha,
                       equivalence_margin=self.equivalence_margin,
                       compare=list(self.compare) if self.compare else None)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def _interval_note(res: PresetResult) -> str:
    text = f"Ours: {res.center} over seeds, {CI_DESCRIPTION[res.ci].format(center=res.center)}"
    val = res.long[(res.long["split"] == "validation") & (res.long["task"] != "average")]
    ns = val["n"].dropna().astype(int) if "n" in val else pd.Series(dtype=int)
    ns = ns[ns >= 2]
    if res.ci == "order" and "coverage" in val and val["coverage"].notna().any():
        cov = sorted({round(100 * c, 1) for c in val["coverage"].dropna()})
        text += f"; exact coverage {', '.join(f'{c:g}%' for c in cov)} for the seeds there are"
    if res.ci == "bootstrap" and len(ns) and ns.min() < BOOTSTRAP_MIN_SEEDS:
        text += (f"; WARNING: {ns.min()} seeds: a bootstrap interval over fewer than {BOOTSTRAP_MIN_SEEDS} "
                 "seeds covers less than its 95% (about 85% at 5 seeds); prefer ci=t")
    return text + "."


def _notes(res: PresetResult, opts: ReportOptions, runs_total: pd.DataFrame) -> list[str]:
    """The notes under the Markdown table: how every number was made (the LaTeX caption is shorter)."""
    p = res.preset
    notes = [_interval_note(res),
             f"selection={opts.selection} (score of a run), setting={opts.setting} (sweep choices.json, "
             "else best mean validation). Percentages. n = seeds with a score of all seeds of the chosen "
             "setting (failed and missing named)."]
    if p.experiment:
        notes.append(f"Protocol: runs of experiment={p.experiment} (grid {' / '.join(p.grids)} or none).")
    batches = res.long.get("effective_batch", pd.Series(dtype=float)).dropna().astype(int).unique().tolist()
    if batches:
        notes.append("Batch per optimiser step (batch_size × grad_accumulation): "
                     + ", ".join(str(b) for b in sorted(batches)) + ".")
    precisions = res.long.get("precision", pd.Series(dtype=object)).dropna().unique().tolist()
    if precisions:
        notes.append("Precision: " + ", ".join(sorted(map(str, precisions))) + ".")
    if any(e.split == "test" for e in res.entries):
        notes.append("Test: GLUE server scores; ± = 1.96·√(p(1−p)/n) over the n test examples the score "
                     "counts (column n); – for Matthews/Pearson.")
    if p.note:
        notes.append(p.note + ".")
    for m in res.messages:
        if m.startswith("Left out"):
            notes.append(m + ".")
    counts = runs_total["status"].value_counts().to_dict() if not runs_total.empty else {}
    if counts:
        notes.append("Runs scanned: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".")
    return notes


def _caption(res: PresetResult) -> str:
    """A caption a paper can keep: what the table shows and how the numbers were made."""
    p = res.preset
    cap = p.caption or p.title
    if "Metrics:" not in cap and p.tasks:
        names = {"cola": "CoLA Matthews correlation", "stsb": "STS-B Pearson correlation",
                 "mnli": "MNLI matched accuracy"}
        cap += " Metrics: " + ", ".join(names[t] for t in names if t in p.tasks) + \
            (", others accuracy." if any(t not in names for t in p.tasks) else ".")
    if res.ci != p.ci or res.center != p.center:
        cap += f" (Ours here: {res.center} over seeds, {CI_DESCRIPTION[res.ci].format(center=res.center)}.)"
    if res.left_out:
        cap += f" Runs of other protocols left out: {sum(res.left_out.values())}."
    return cap


def report_preset(name: str, results_dir: Path, runs: pd.DataFrame, choices, published, test_scores,
                  opts: ReportOptions, echo: Callable[[str], None] = print) -> PresetResult | None:
    preset: Preset = get_preset(name)
    if runs.empty and not preset.entries:
        return None  # summary with nothing to show
    res = build_preset(preset, runs, choices, published, test_scores, opts.build_options())
    for m in res.messages:
        echo(f"[{name}] {m}")
    if res.n_matched_runs == 0 and not preset.entries:
        return res
    notes = _notes(res, opts, runs)
    paths = write_tables(results_dir / "tables", name, res.display, res.long, preset.title, notes,
                         caption=_caption(res))
    echo(f"\n## {preset.title}\n\n{to_markdown(res.display)}")
    for n in notes:
        echo(n)
    echo(f"(written: {paths['md']}, {paths['csv'].name}, {paths['tex'].name})")

    if not res.compare.empty:
        cmp_disp = res.compare.copy()
        for c in ("value_a", "value_b", "diff"):
            cmp_disp[c] = cmp_disp[c].map(lambda v: f"{v:.2f}" if pd.notna(v) else "–")
        for c in ("t", "df"):
            cmp_disp[c] = cmp_disp[c].map(lambda v: f"{v:.3f}" if pd.notna(v) else "–")
        for c in ("p", "tost_p"):
            cmp_disp[c] = cmp_disp[c].map(lambda v: f"{v:.3g}" if pd.notna(v) else "–")
        cmp_disp = cmp_disp.drop(columns=["test", "a", "b", "ci"])
        write_tables(results_dir / "tables", f"{name}_compare", cmp_disp, res.compare,
                     f"{preset.title}: comparison", [res.compare_note],
                     caption=_compare_caption(res, opts), latex=_compare_latex(cmp_disp, res.long))
        echo(f"\n### Comparison ({res.compare_note})\n\n{to_markdown(cmp_disp)}")
    elif res.compare_note:
        echo(f"[{name}] {res.compare_note}")

    if opts.figures:
        written = _figures(name, preset, res, results_dir / "figures", opts.figure_method)
        if written:
            echo("figures: " + ", ".join(str(p) for p in written))

    if opts.figures and preset.frontier:
        written = frontier_figure(res.long, [t for t in preset.tasks if t != "mnli_mm"], results_dir / "figures",
                                  f"{name}_frontier", preset.title)
        if written:
            echo("frontier: " + ", ".join(str(p) for p in written))

    if opts.submission:
        _submission(res, results_dir, opts.selection, opts.submission_partial, echo)
    return res


def _compare_caption(res: PresetResult, opts: ReportOptions) -> str:
    a, b = res.compare["a"].iloc[0], res.compare["b"].iloc[0]
    if "method" in res.compare:  # every method against one (preset.compare_each_to)
        a = "Each method"
    interval = CI_DESCRIPTION[res.ci].format(center=res.center)
    return (f"{a} (a) against {b} (b) per task: {res.center} over seeds with its {interval}; the "
            f"difference a − b; the two-sided Welch t-test p (different if p < {opts.alpha:g}, otherwise "
            f"not significantly different, which with a few seeds is not equivalence); whether the two "
            f"intervals overlap; and the TOST p for equivalence within ±{opts.equivalence_margin:g} points "
            f"(equivalent if p < {opts.alpha:g}).")


def _compare_latex(cmp_disp: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """The comparison as a paper prints it: the two intervals, the difference and the p-values (the
    decisions' wording is in the caption and the Markdown)."""
    tasks = list(long["task"].unique()) if "task" in long else []
    from .build import task_name

    methods = {"Method": cmp_disp["method"]} if "method" in cmp_disp else {}
    return pd.DataFrame({
        **methods, "Task": [task_name(t, tasks) for t in cmp_disp["task"]],
        "a: ours": [f"{v} {c}" for v, c in zip(cmp_disp["value_a"], cmp_disp["ci_a"])],
        "a: n": cmp_disp["n_a"], "b: ours": [f"{v} {c}" for v, c in zip(cmp_disp["value_b"], cmp_disp["ci_b"])],
        "b: n": cmp_disp["n_b"], "a − b": cmp_disp["diff"], "Welch p": cmp_disp["p"],
        "overlap": cmp_disp["intervals_overlap"], "TOST p": cmp_disp["tost_p"]})


def _figures(name: str, preset: Preset, res: PresetResult, fig_dir: Path, figure_method: str | None) -> list[Path]:
    written = bar_chart(res.long, fig_dir, f"{name}_bars", preset.title)
    variants = [figure_method] if figure_method else list(preset.figure_variants) or list(
        dict.fromkeys(e.variant for e in res.entries if e.split == "validation"))[:2]
    by_method: dict[str, dict[str, list[str]]] = {}
    for v in variants:
        by_task: dict[str, list[str]] = {}
        for (label, task), sub in res.chosen.items():
            entry = next(e for e in res.entries if e.label == label)
            if entry.variant != v or sub.empty or task == "mnli_mm":
                continue
            ok = sub[(sub["status"] == "done") & sub["has_layer_norms"]]
            if not ok.empty and task not in by_task:
                by_task[task] = ok["run_dir"].tolist()
        if by_task:
            by_method[v] = by_task
    if by_method:
        written += layer_norm_figure(by_method, fig_dir, f"{name}_layer_norms",
                                     [t for t in preset.tasks if t != "mnli_mm"] or None)
    curves: dict[str, dict[str, list[str]]] = {}  # every row's finished runs, as the table counts them
    for (label, task), sub in res.chosen.items():
        if task != "mnli_mm" and not sub.empty:
            done = sub[sub["status"] == "done"]["run_dir"].tolist()
            if done:
                curves.setdefault(label, {})[task] = done
    if curves:
        written += learning_curves(curves, fig_dir, f"{name}_curves",
                                   [t for t in preset.tasks if t != "mnli_mm"] or None)
    return written


def _submission(res: PresetResult, results_dir: Path, selection: str, partial: bool, echo) -> None:
    val = [e for e in res.entries if e.split == "validation"]
    for e in val:
        run_by_task = {}
        for task in {t for (lab, t) in res.chosen if lab == e.label and t != "mnli_mm"}:
            best = best_seed_run(res.chosen[(e.label, task)], selection, need_predictions=True)
            if best is not None:
                run_by_task[task] = best["run_dir"]
        files = collect_prediction_files(run_by_task)
        if not files:
            continue
        same = [x for x in val if x.variant == e.variant]
        stem = e.variant if len(same) == 1 else _slug(e.label)
        zpath = results_dir / "submission" / f"{stem}.zip"
        try:
            rejected = write_submission(zpath, files, partial)
        except SubmissionError as refused:
            echo(f"submission: {zpath} not written: {refused}\n"
                 "  (submission_partial=true writes it anyway, for a dry run)")
            continue
        echo(f"submission: {zpath} ({len(files)} files)" + (
            ", PARTIAL: the GLUE server would reject it:\n" + "\n".join(f"  {c}" for c in rejected)
            if rejected else ""))


def run_report(options: ReportOptions, echo: Callable[[str], None] = print) -> dict[str, PresetResult | None]:
    """Every table, comparison, figure and zip of ``options.preset`` from ``options.results_dir``."""
    opts = options
    results_dir = Path(opts.results_dir)
    if not results_dir.is_dir():
        raise ReportInputError(f"results_dir={results_dir}: no such directory (it should hold runs/, "
                               "as train.py and sweep.py write it)")
    names = PAPER_PRESETS if opts.preset == "papers" else [opts.preset]
    for n in names:
        get_preset(n)  # an unknown name fails before any work
    runs = collect_runs(results_dir)
    choices = load_choices(results_dir, opts.grid)
    pub = load_published(opts.published)
    tests = load_test_scores(opts.test_scores)
    if runs.empty:
        echo(f"No run directories under {results_dir / 'runs'} "
             "(expected runs/<task>/<method>/<setting>/seed=<n>/ with config.yaml / metrics.json)"
             + ("; the paper presets show the published numbers only." if opts.preset != "all" else "."))
    else:
        (results_dir / "tables").mkdir(parents=True, exist_ok=True)
        runs.to_csv(results_dir / "tables" / "runs.csv", index=False)
        echo(f"{len(runs)} run directories: " + ", ".join(
            f"{k} {v}" for k, v in sorted(runs["status"].value_counts().to_dict().items()))
            + f"; sweep choices: {len(choices)}")
        for _, r in runs[runs["rows_skipped"] > 0].iterrows():
            echo(f"  {r['run_dir']}: {r['rows_skipped']} malformed data row(s) skipped "
                 "(metrics.json 'data' names the lines)")
    return {n: report_preset(n, results_dir, runs, choices, pub, tests, opts, echo) for n in names}


__all__ = ["ReportOptions", "ReportInputError", "run_report", "report_preset"]
