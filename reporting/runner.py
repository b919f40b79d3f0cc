"""Orchestration behind ``report.py``: collect -> per preset build -> tables, comparison, figures, zip."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pandas as pd

from .build import Options, PresetResult, build_preset
from .collect import collect_runs, load_choices
from .figures import bar_chart, layer_norm_figure
from .presets import PAPER_PRESETS, Preset, get_preset
from .published import load_published, load_test_scores
from .selection import best_seed_run
from .statistics import CI_DESCRIPTION
from .submission import SubmissionError, collect_prediction_files, write_submission
from .tables import to_markdown, write_tables


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def _notes(res: PresetResult, opts: Options, runs_total: pd.DataFrame) -> list[str]:
    p = res.preset
    notes = [f"Ours: {res.center} over seeds, {CI_DESCRIPTION[res.ci].format(center=res.center)}; "
             f"selection={opts.selection} (score of a run), setting={opts.setting} "
             "(sweep choices.json, else best mean validation). Percentages. "
             "n = finished seeds of all seeds of the chosen setting (failed/missing counted)."]
    if any(e.split == "test" for e in res.entries):
        notes.append("Test: GLUE server scores; ± = 1.96·sqrt(p(1−p)/n) with the official test-set size, "
                     "– for Matthews/Pearson.")
    if p.note:
        notes.append(p.note + ".")
    counts = runs_total["status"].value_counts().to_dict() if not runs_total.empty else {}
    if counts:
        notes.append("Runs scanned: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".")
    return notes


def report_preset(name: str, results_dir: Path, runs: pd.DataFrame, choices, published, test_scores,
                  opts: Options, figures: bool = True, submission: bool = True,
                  figure_method: str | None = None, echo: Callable[[str], None] = print,
                  submission_partial: bool = False) -> PresetResult:
    preset: Preset = get_preset(name)
    res = build_preset(preset, runs, choices, published, test_scores, opts)
    for m in res.messages:
        echo(f"[{name}] {m}")
    if res.n_matched_runs == 0 and not preset.entries:
        return res  # summary with nothing to show
    notes = _notes(res, opts, runs)
    paths = write_tables(results_dir / "tables", name, res.display, res.long, preset.title, notes)
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
        cmp_disp["p"] = cmp_disp["p"].map(lambda v: f"{v:.4g}" if pd.notna(v) else "–")
        cmp_disp = cmp_disp.drop(columns=["test"])
        write_tables(results_dir / "tables", f"{name}_compare", cmp_disp, res.compare,
                     f"{preset.title}: comparison", [res.compare_note])
        echo(f"\n### Comparison ({res.compare_note})\n\n{to_markdown(cmp_disp)}")
    elif res.compare_note:
        echo(f"[{name}] {res.compare_note}")

    if figures:
        fig_dir = results_dir / "figures"
        written = bar_chart(res.long, fig_dir, f"{name}_bars", preset.title)
        variants = [figure_method or preset.figure_variant] if (figure_method or preset.figure_variant) \
            else list(dict.fromkeys(e.variant for e in res.entries if e.split == "validation"))
        for v in variants:
            by_task: dict[str, list[str]] = {}
            for (label, task), sub in res.chosen.items():
                entry = next(e for e in res.entries if e.label == label)
                if entry.variant != v or sub.empty:
                    continue
                ok = sub[(sub["status"] == "done") & sub["has_layer_norms"]]
                if not ok.empty and task not in by_task:
                    by_task[task] = ok["run_dir"].tolist()
            if by_task:
                written += layer_norm_figure(by_task, fig_dir, f"{name}_layer_norms_{_slug(v)}",
                                             f"{v}: layer norms (mean over seeds and targets)")
                break  # one Figure 1 per preset: the first variant that has layer norms
        if written:
            echo("figures: " + ", ".join(str(p) for p in written))

    if submission:
        val = [e for e in res.entries if e.split == "validation"]
        for e in val:
            run_by_task = {}
            for task in {t for (lab, t) in res.chosen if lab == e.label}:
                best = best_seed_run(res.chosen[(e.label, task)], opts.selection, need_predictions=True)
                if best is not None:
                    run_by_task[task] = best["run_dir"]
            files = collect_prediction_files(run_by_task)
            if not files:
                continue
            same = [x for x in val if x.variant == e.variant]
            stem = e.variant if len(same) == 1 else _slug(e.label)
            zpath = results_dir / "submission" / f"{stem}.zip"
            try:
                rejected = write_submission(zpath, files, submission_partial)
            except SubmissionError as refused:
                echo(f"submission: {zpath} not written: {refused}\n"
                     "  (submission_partial=true writes it anyway, for a dry run)")
                continue
            echo(f"submission: {zpath} ({len(files)} files)" + (
                ", PARTIAL: the GLUE server would reject it:\n" + "\n".join(f"  {c}" for c in rejected)
                if rejected else ""))
    return res


def run_report(results_dir: str | Path, preset: str = "all", ci: str | None = None,
               selection: str = "best_epoch", setting: str = "sweep", center: str | None = None,
               test_scores: str | None = None, published: str | None = None, compare=None,
               grid: str | None = None, expected_seeds: int | None = None, bootstrap_samples: int = 10000,
               bootstrap_seed: int = 0, alpha: float = 0.05, figures: bool = True, submission: bool = True,
               figure_method: str | None = None, echo: Callable[[str], None] = print,
               submission_partial: bool = False) -> dict[str, PresetResult]:
    results_dir = Path(results_dir)
    opts = Options(ci=ci, center=center, selection=selection, setting=setting, expected_seeds=expected_seeds,
                   n_boot=bootstrap_samples, boot_seed=bootstrap_seed, alpha=alpha,
                   compare=list(compare) if compare else None)
    runs = collect_runs(results_dir)
    choices = load_choices(results_dir, grid)
    pub = load_published(published)
    tests = load_test_scores(test_scores)
    if runs.empty:
        echo(f"No run directories under {results_dir / 'runs'} "
             "(expected runs/<task>/<method>/<setting>/seed=<n>/ with config.yaml / metrics.json).")
    else:
        (results_dir / "tables").mkdir(parents=True, exist_ok=True)
        runs.to_csv(results_dir / "tables" / "runs.csv", index=False)
        echo(f"{len(runs)} run directories: " + ", ".join(
            f"{k} {v}" for k, v in sorted(runs["status"].value_counts().to_dict().items()))
            + f"; sweep choices: {len(choices)}")
        for _, r in runs[runs["rows_skipped"] > 0].iterrows():
            echo(f"  {r['run_dir']}: {r['rows_skipped']} malformed data row(s) skipped "
                 "(metrics.json 'data' names the lines)")
    names = PAPER_PRESETS if preset == "papers" else [preset]
    return {n: report_preset(n, results_dir, runs, choices, pub, tests, opts, figures, submission,
                             figure_method, echo, submission_partial) for n in names}
