"""Orchestration behind ``report.py``: collect -> per preset build -> tables, comparison, figures, zip."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import pandas as pd

from .build import Options, PresetResult, build_preset
from .collect import collect_runs, load_choices
from .figures import bar_chart, difference_chart, layer_norm_figure, learning_curves
from .frontier import frontier_figure
from .presets import PAPER_PRESETS, Preset, get_preset
from .published import ReportInputError, load_published, load_test_scores
from .selection import best_seed_run
from .build import CLIPPED_MARK, MNLI_COLUMNS, NO_SPREAD_MARK, coverage_text, run_task
from .statistics import BOOTSTRAP_MIN_SEEDS, CI_DESCRIPTION, difference_interval
from .submission import SubmissionError, collect_prediction_files, write_submission
from .tables import to_markdown, write_tables


CHOICES = {"ci": (None, *CI_DESCRIPTION), "center": (None, "mean", "median"),
           "selection": ("best_epoch", "last_epoch"), "setting": ("sweep", "best_mean")}


@dataclass
class ReportOptions:
    """Every option of ``report.py`` (reporting/report.yaml documents each)."""
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
        if isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool) and not 0 < self.alpha < 1:
            problems.append(f"alpha={self.alpha!r}: expected a significance level between 0 and 1 (e.g. 0.05)")
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
    if res.ci in ("normal", "order"):
        text += ("; an interval's actual coverage is printed in its cell where it is not 95% (e.g. "
                 + ", ".join(f"{coverage_text(c).strip(' ()')} at {n} seeds" for n, c in _coverage_examples(res.ci))
                 + ")")
    if res.ci == "bootstrap" and len(ns) and ns.min() < BOOTSTRAP_MIN_SEEDS:
        better = "ci=order (exact coverage stated)" if res.center == "median" else "ci=t"
        text += (f"; WARNING: {ns.min()} seeds: a bootstrap interval over fewer than {BOOTSTRAP_MIN_SEEDS} "
                 "seeds covers less than its 95% (about 85% at 5 seeds, 90% at 10); prefer " + better)
    if "clipped" in val and val["clipped"].eq(True).any():
        text += f"; {CLIPPED_MARK} interval clipped to the metric's range (0 to 100, correlations −100 to 100)"
    if "no_spread" in val and val["no_spread"].eq(True).any():
        text += f"; {NO_SPREAD_MARK} every seed has the same score: no spread, no interval, no test"
    return text + "."


def _coverage_examples(ci: str) -> list[tuple[int, float]]:
    from .statistics import median_interval, normal_coverage

    if ci == "normal":
        return [(n, normal_coverage(n)) for n in (2, 3, 5, 10)]
    return [(n, median_interval(list(range(n)))[2]) for n in (2, 3, 5, 10)]


def _notes(res: PresetResult, opts: ReportOptions, runs_total: pd.DataFrame) -> list[str]:
    """The notes under the Markdown table: how every number was made, and every message about what
    is missing or left out (the LaTeX caption is shorter and takes the latter as a footnote)."""
    p = res.preset
    notes = [_interval_note(res),
             f"selection={opts.selection} (score of a run), setting={opts.setting} (sweep choices.json, "
             "else best mean validation). Percentages. n = seeds with a score of all seeds of the chosen "
             "setting (crashed, diverged (NaN), unreadable and missing named)."]
    if p.experiment:
        notes.append(f"Protocol: runs of experiment={p.experiment} (grid {' / '.join(p.grids)} or none).")
    batches = res.long.get("effective_batch", pd.Series(dtype=float)).dropna().astype(int).unique().tolist()
    if batches:
        notes.append("Batch per optimiser step (batch_size × grad_accumulation): "
                     + ", ".join(str(b) for b in sorted(batches)) + ".")
    for key, name in (("precision", "Precision"), ("engine", "Engine")):
        found = sorted({x.strip() for v in res.long.get(key, pd.Series(dtype=object)).dropna() for x in str(v).split(",")})
        if found:
            notes.append(f"{name} (of the runs with a score): " + ", ".join(found) + ".")
    if any(e.split == "test" for e in res.entries):
        notes.append("Test: GLUE server scores; ± = 1.96·√(p(1−p)/n) over the n test examples the score "
                     "counts (column n); – for Matthews/Pearson.")
        if "test_pooled" in res.long and res.long["test_pooled"].eq(True).any():
            notes.append("Test MNLI given as one number (task mnli): matched and mismatched together, "
                         "n = 9,796 + 9,847; give MNLI-m and MNLI-mm for each on its own n.")
    if p.note:
        notes.append(p.note + ".")
    notes += [m.rstrip(".") + "." for m in res.messages]
    if "other_settings" in res.long:
        for r in res.long[res.long["other_settings"].notna()].itertuples():
            notes.append(f"{r.row}, {r.task}: shown {r.setting} ({r.setting_source}); not shown: {r.other_settings}.")
    unreadable = runs_total[runs_total["outcome"] == "unreadable"] if "outcome" in runs_total else runs_total.iloc[0:0]
    for r in unreadable.itertuples():
        notes.append(f"Unreadable run (counted, no score): {' '.join(str(r.reason).split())}.")
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
                  opts: ReportOptions, echo: Callable[[str], None] = print,
                  all_runs: pd.DataFrame | None = None) -> PresetResult | None:
    """One preset's tables, comparison, figures and zip; ``all_runs`` (default ``runs``) is every run
    scanned, unreadable ones included, which the notes count and name."""
    preset: Preset = get_preset(name)
    if runs.empty and not preset.entries:
        return None  # summary with nothing to show
    res = build_preset(preset, runs, choices, published, test_scores, opts.build_options())
    for m in res.messages:
        echo(f"[{name}] {m}")
    if res.n_matched_runs == 0 and not preset.entries:
        return res
    notes = _notes(res, opts, runs if all_runs is None else all_runs)
    paths = write_tables(results_dir / "tables", name, res.display, res.long, preset.title, notes,
                         caption=_caption(res), latex_notes=res.messages)
    echo(f"\n## {preset.title}\n\n{to_markdown(res.display)}")
    for n in notes:
        echo(n)
    echo(f"(written: {paths['md']}, {paths['csv'].name}, {paths['tex'].name})")

    if not res.compare.empty:
        cmp_disp = res.compare.copy()
        for c in ("value_a", "value_b", "diff"):
            cmp_disp[c] = cmp_disp[c].map(lambda v: f"{v:.2f}" if pd.notna(v) else "–")
        for c in ("statistic", "df"):
            cmp_disp[c] = cmp_disp[c].map(lambda v: f"{v:.3f}" if pd.notna(v) else "–")
        for c in ("p", "tost_p"):
            cmp_disp[c] = cmp_disp[c].map(lambda v: f"{v:.3g}" if pd.notna(v) else "–")
        cmp_disp = cmp_disp.drop(columns=["test", "a", "b", "ci"])
        write_tables(results_dir / "tables", f"{name}_compare", cmp_disp, res.compare,
                     f"{preset.title}: comparison", [res.compare_note],
                     caption=_compare_caption(res, opts), latex=_compare_latex(cmp_disp, res.long, res.center))
        echo(f"\n### Comparison ({res.compare_note})\n\n{to_markdown(cmp_disp)}")
    elif res.compare_note:
        echo(f"[{name}] {res.compare_note}")

    if opts.figures:
        written = _figures(name, preset, res, results_dir / "figures", opts.figure_method, opts)
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
    test = ("the two-sided Mann-Whitney U test p (rank-based, for medians)" if res.center == "median"
            else "the two-sided Welch t-test p")
    tost = ("two one-sided Mann-Whitney tests" if res.center == "median" else "two one-sided Welch tests")
    return (f"{a} (a) against {b} (b) per task: {res.center} over seeds with its {interval}; the "
            f"difference a − b of the {res.center}s; {test} (different if p < {opts.alpha:g}, otherwise "
            f"not significantly different, which with a few seeds is not equivalence); whether the two "
            f"intervals overlap; and the TOST p ({tost}) for equivalence within ±{opts.equivalence_margin:g} "
            f"points (equivalent if p < {opts.alpha:g}). No test where both have identical seeds.")


def _compare_latex(cmp_disp: pd.DataFrame, long: pd.DataFrame, center: str) -> pd.DataFrame:
    """The comparison as a paper prints it: the two intervals, the difference and the p-values (the
    decisions' wording is in the caption and the Markdown)."""
    tasks = list(long["task"].unique()) if "task" in long else []
    from .build import task_name

    methods = {"Method": cmp_disp["method"]} if "method" in cmp_disp else {}
    return pd.DataFrame({
        **methods, "Task": [task_name(t, tasks) for t in cmp_disp["task"]],
        "a: ours": [f"{v} {c}" for v, c in zip(cmp_disp["value_a"], cmp_disp["ci_a"])],
        "a: n": cmp_disp["n_a"], "b: ours": [f"{v} {c}" for v, c in zip(cmp_disp["value_b"], cmp_disp["ci_b"])],
        "b: n": cmp_disp["n_b"], "a − b": cmp_disp["diff"],
        ("Mann-Whitney p" if center == "median" else "Welch p"): cmp_disp["p"],
        "overlap": cmp_disp["intervals_overlap"], "TOST p": cmp_disp["tost_p"]})


def _differences(res: PresetResult, opts: ReportOptions) -> pd.DataFrame:
    """Each validation row's difference to the baseline row (the LoRA row with runs, else the preset's
    second compared row), per task, with its interval (statistics.difference_interval), in points."""
    from .build import score_column, task_metric, task_score_column

    val = [e for e in res.entries if e.split == "validation"]
    has = lambda e: any(not sub.empty for (lab, _), sub in res.chosen.items() if lab == e.label)  # noqa: E731
    with_runs = [e for e in val if has(e)]
    base = next((e for e in with_runs if e.variant == "lora"), None)
    if base is None and res.preset.compare:
        base = next((e for e in with_runs if e.label == res.preset.compare[1]), None)
    if base is None or len(with_runs) < 2:
        return pd.DataFrame()
    col = score_column(opts.selection)
    tasks = list(dict.fromkeys(t for t in res.long["task"] if t != "average"))

    def scores(label, task):
        sub = res.chosen.get((label, task))
        return [] if sub is None else sub[sub["status"] == "done"][task_score_column(col, task)].dropna().tolist()

    rows = []
    for e in with_runs:
        if e is base:
            continue
        for t in tasks:
            d, lo, hi = difference_interval(scores(e.label, t), scores(base.label, t), res.center,
                                            n_boot=opts.bootstrap_samples, seed=opts.bootstrap_seed)
            rows.append({"row": e.label, "baseline": base.label, "task": t, "metric": task_metric(t),
                         "diff": 100 * d, "low": 100 * lo, "high": 100 * hi})
    return pd.DataFrame(rows)


def _figures(name: str, preset: Preset, res: PresetResult, fig_dir: Path, figure_method: str | None,
             opts: ReportOptions | None = None) -> list[Path]:
    written = bar_chart(res.long, fig_dir, f"{name}_bars", preset.title)
    diffs = _differences(res, opts or ReportOptions())
    if not diffs.empty:
        written += difference_chart(diffs, fig_dir, f"{name}_differences", preset.title)
    variants = [figure_method] if figure_method else list(preset.figure_variants) or list(
        dict.fromkeys(e.variant for e in res.entries if e.split == "validation"))[:2]
    by_method: dict[str, dict[str, list[str]]] = {}
    for v in variants:
        by_task: dict[str, list[str]] = {}
        for (label, task), sub in res.chosen.items():
            entry = next(e for e in res.entries if e.label == label)
            if entry.variant != v or sub.empty or task in MNLI_COLUMNS:
                continue
            ok = sub[(sub["status"] == "done") & sub["has_layer_norms"]]
            if not ok.empty and task not in by_task:
                by_task[task] = ok["run_dir"].tolist()
        if by_task:
            by_method[v] = by_task
    if by_method:
        written += layer_norm_figure(by_method, fig_dir, f"{name}_layer_norms",
                                     [run_task(t) for t in preset.tasks if t != "mnli_mm"] or None)
    curves: dict[str, dict[str, list[str]]] = {}  # every row's finished runs, as the table counts them
    for (label, task), sub in res.chosen.items():
        if task != "mnli_mm" and not sub.empty:
            task = run_task(task)
            done = sub[sub["status"] == "done"]["run_dir"].tolist()
            if done:
                curves.setdefault(label, {})[task] = done
    if curves:
        written += learning_curves(curves, fig_dir, f"{name}_curves",
                                   [run_task(t) for t in preset.tasks if t != "mnli_mm"] or None)
    return written


def _submission(res: PresetResult, results_dir: Path, selection: str, partial: bool, echo) -> None:
    val = [e for e in res.entries if e.split == "validation"]
    for e in val:
        run_by_task = {}
        for column in {t for (lab, t) in res.chosen if lab == e.label and t != "mnli_mm"}:
            best = best_seed_run(res.chosen[(e.label, column)], selection, need_predictions=True)
            if best is not None:
                run_by_task[run_task(column)] = best["run_dir"]
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
    presets = [get_preset(n) for n in names]  # an unknown name fails before any work
    if opts.test_scores and not any(e.split == "test" for p in presets for e in p.entries):
        with_test = [p for p in PAPER_PRESETS if any(e.split == "test" for e in get_preset(p).entries)]
        raise ReportInputError(f"test_scores={opts.test_scores}: preset={opts.preset} has no test column, so "
                               f"the scores would be ignored; presets with one: {', '.join(with_test)} "
                               "(or preset=papers)")
    runs = collect_runs(results_dir)
    choices = load_choices(results_dir, opts.grid) if opts.setting == "sweep" else []
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
        for r in runs[runs["outcome"] == "unreadable"].itertuples():
            echo(f"  unreadable run, counted without a score: {' '.join(str(r.reason).split())}")
        for _, r in runs[runs["rows_skipped"] > 0].iterrows():
            echo(f"  {r['run_dir']}: {r['rows_skipped']} malformed data row(s) skipped "
                 "(metrics.json 'data' names the lines)")
    return {n: report_preset(n, results_dir, _placed(runs), choices, pub, tests, opts, echo, runs) for n in names}


def _placed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a table can place: a run whose config.yaml cannot be read names no task or method (it is
    listed, with its file, in the notes and on the console, and counted among the runs scanned)."""
    if runs.empty:
        return runs
    return runs[runs["task"].fillna("").astype(str).ne("") & runs["method"].notna()]


__all__ = ["ReportOptions", "ReportInputError", "run_report", "report_preset"]
