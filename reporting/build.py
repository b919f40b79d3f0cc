"""Assemble one preset: a long table (one row per table cell, numbers), the paper-layout display table
(strings) and the two-method comparison. Percentages from here on (data stays fractions upstream)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .presets import Entry, Preset
from .published import find_published, find_test_entry
from .selection import choose_setting, score_column
from .statistics import (CI_DESCRIPTION, NON_BERNOULLI, check_ci, compare_groups, intervals_overlap,
                         summarize, test_half_width)
from .tasks import TASK_ORDER, TEST_SIZE, display, main_metric

NONE_INIT = "__none__"  # an extra row for runs that record no frozen init


@dataclass
class Options:
    ci: str | None = None            # None -> the preset's
    center: str | None = None        # None -> the preset's
    selection: str = "best_epoch"
    setting: str = "sweep"
    expected_seeds: int | None = None
    n_boot: int = 10000
    boot_seed: int = 0
    alpha: float = 0.05
    equivalence_margin: float = 1.0  # TOST margin, percentage points
    compare: list[str] | None = None


@dataclass
class PresetResult:
    preset: Preset
    long: pd.DataFrame
    display: pd.DataFrame
    compare: pd.DataFrame
    compare_note: str
    chosen: dict[tuple[str, str], pd.DataFrame]
    entries: list[Entry]
    messages: list[str] = field(default_factory=list)
    ci: str = "t"
    center: str = "mean"
    left_out: dict[str, int] = field(default_factory=dict)  # "experiment=…, grid=…" / "model=…" -> runs

    @property
    def n_matched_runs(self) -> int:
        return int(sum(len(v) for v in self.chosen.values()))


# ---------------------------------------------------------------- formatting helpers (percent strings)
def fmt(v: Any, digits: int = 1, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or pd.isna(v):
        return "–"
    v = round(float(v), digits) + 0.0  # no "-0.0"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


NO_SPREAD_MARK = "†"  # identical seeds: "± 0.0" is a fact about the seeds, not an interval
CLIPPED_MARK = "‡"    # the interval reached past the metric's range and was clipped to it


def coverage_text(coverage: Any) -> str:
    """' (87.8%)' where an interval's actual coverage is not 95% ('' where it is, or unknown)."""
    if not _finite(coverage) or abs(float(coverage) - 0.95) < 5e-4:
        return ""
    return f" ({100 * float(coverage):.3g}%)"


def fmt_cell(row: dict) -> str:
    """Ours: the centre with its interval, the interval's coverage where it is not 95%, a mark for
    identical seeds (†) and for an interval clipped to the metric's range (‡)."""
    if not _finite(row.get("value")):
        return "–"
    if row.get("split") == "test":
        return f"{fmt(row['value'])} ± {fmt(row.get('half_width'))}"
    if row.get("no_spread") is True:
        return f"{fmt(row['value'])} ± 0.0{NO_SPREAD_MARK}"
    clipped = row.get("clipped") is True
    mark = CLIPPED_MARK if clipped else ""
    cov = coverage_text(row.get("coverage"))
    if (row.get("ci") in ("bootstrap", "order") or clipped) and _finite(row.get("ci_low")):
        return f"{fmt(row['value'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]{mark}{cov}"
    if _finite(row.get("half_width")):
        return f"{fmt(row['value'])} ± {fmt(row['half_width'])}{cov}"
    return fmt(row["value"])


def fmt_published(row: dict) -> str:
    if not _finite(row.get("published")):
        return "–"
    if _finite(row.get("published_pm")):
        return f"{fmt(row['published'])} ± {fmt(row['published_pm'])}"
    return fmt(row["published"])


def fmt_count(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{int(v):,}"


def _finite(v: Any) -> bool:
    try:
        return v is not None and not pd.isna(v) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _pct(v: float) -> float:
    return v * 100.0 if _finite(v) else math.nan


def metric_bounds(metric: str) -> tuple[float, float]:
    """A metric's range as a fraction: correlations [-1, 1], accuracies [0, 1] (intervals are clipped)."""
    return (-1.0, 1.0) if metric in NON_BERNOULLI else (0.0, 1.0)


def _no_score_kinds(srun: pd.DataFrame, tcol: str) -> dict[str, int]:
    """Seeds that finished without a score, by kind: crashed, diverged (NaN), NaN score, unreadable."""
    kinds: dict[str, int] = {}
    for r in srun.itertuples():
        if r.status == "failed":
            kind = getattr(r, "outcome", "failed") or "failed"
        elif r.status == "done" and pd.isna(getattr(r, tcol)):
            kind = "NaN score"
        else:
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


def _joined(values) -> str | None:
    """The distinct values of a column as one string ('bf16' or 'bf16, fp32'); None when there are none."""
    if values is None:
        return None
    found = sorted({str(v) for v in values.dropna()})
    return ", ".join(found) if found else None


def _other_settings(sub: pd.DataFrame, setting, tcol: str) -> str | None:
    """The settings of this row's runs that the table does not show (a run made by hand beside a
    sweep's choice), each with its finished seeds and mean, so that none disappears without a word."""
    others = []
    for name, g in sub[sub["setting"] != setting].groupby("setting", sort=True):
        scores = g[(g["status"] == "done")][tcol].dropna()
        mean = f"mean {100 * scores.mean():.1f}" if len(scores) else "no score"
        others.append(f"{name} ({len(scores)} of {len(g)} seeds, {mean})")
    return "; ".join(others) if others else None


# ---------------------------------------------------------------- tasks (MNLI's two validation sets)
MNLI_COLUMNS = ("mnli_mm", "mnli_all")  # MNLI-mm; MNLI overall (matched and mismatched together)


def run_task(task: str) -> str:
    """The task whose runs fill a column: MNLI-mm and MNLI overall are scored on the MNLI runs."""
    return "mnli" if task in MNLI_COLUMNS else task


def task_score_column(col: str, task: str) -> str:
    if task not in MNLI_COLUMNS:
        return col
    kind = "mismatched" if task == "mnli_mm" else "overall"
    return f"best_{kind}" if col == "best_score" else f"last_{kind}"


def task_metric(task: str) -> str:
    return {"mnli_mm": "accuracy_mismatched", "mnli_all": "accuracy_overall"}.get(task) or main_metric(task)


def task_name(task: str, tasks: list[str]) -> str:
    if task == "mnli_mm":
        return "MNLI-mm"
    if task == "mnli_all":
        return "MNLI"
    if task == "mnli" and "mnli_mm" in tasks:
        return "MNLI-m"
    return "Avg." if task == "average" else display(task)


# ---------------------------------------------------------------- protocol binding
def _protocol_key(experiment, grid) -> str:
    return f"experiment={experiment if _given(experiment) else 'null'}, grid={grid if _given(grid) else 'null'}"


def _given(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v is not pd.NA and v != ""


def bind_protocol(preset: Preset, runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The runs of the preset's protocol and model, and how many runs of its tasks and methods each
    other protocol (or model) had, left out."""
    if runs.empty:
        return runs, {}
    runs = _inherit_protocol(runs)
    variants = {e.variant for e in preset.entries} | set(preset.extra_variants)
    tasks = {run_task(t) for t in preset.tasks}
    relevant = runs["task"].isin(tasks) & runs["variant"].isin(variants) if preset.tasks else \
        pd.Series(True, index=runs.index)
    keep = pd.Series(True, index=runs.index)
    left: dict[str, int] = {}
    exp = preset.experiment
    if exp is not None:
        grids = set(preset.grids)
        ok = (runs["experiment"] == exp) & (runs["grid"].isna() | runs["grid"].isin(grids))
        for key, n in runs[relevant & ~ok].apply(
                lambda r: _protocol_key(r["experiment"], r["grid"]), axis=1).value_counts().items():
            left[key] = int(n)
        keep &= ok
    if preset.model:
        ok = runs["model"].isna() | runs["model"].astype(str).str.contains(preset.model, regex=False)
        for key, n in runs[relevant & keep & ~ok]["model"].astype(str).value_counts().items():
            left[f"model={key}"] = int(n)
        keep &= ok
    return runs[keep], left


def _inherit_protocol(runs: pd.DataFrame) -> pd.DataFrame:
    """A run with no metrics.json yet (missing) records no protocol: it takes that of the finished
    or failed runs of its setting (the same configuration, hence the same experiment)."""
    unknown = runs["experiment"].isna() & (runs["status"] == "missing")
    if not unknown.any():
        return runs
    known = runs[runs["experiment"].notna()].drop_duplicates(["task", "method", "setting"])
    lookup = {(r.task, r.method, r.setting): (r.experiment, r.grid) for r in known.itertuples()}
    runs = runs.copy()
    for i in runs.index[unknown]:
        found = lookup.get((runs.at[i, "task"], runs.at[i, "method"], runs.at[i, "setting"]))
        if found:
            runs.at[i, "experiment"], runs.at[i, "grid"] = found
    return runs


# ---------------------------------------------------------------- run matching
def _match(runs: pd.DataFrame, entry: Entry, task: str, rank) -> pd.DataFrame:
    sub = runs[(runs["task"] == run_task(task)) & (runs["variant"] == entry.variant)]
    if rank is not None:
        sub = sub[sub["rank"] == int(rank)]
    if entry.protocol is not None:
        sub = sub[sub["experiment"].fillna("") == entry.protocol]
    if entry.frozen_init == NONE_INIT:
        sub = sub[sub["frozen_init"].isna()]
    elif entry.frozen_init is not None:
        ok = sub["frozen_init"] == entry.frozen_init
        if entry.frozen_init == "orthogonal":
            ok = ok | sub["frozen_init"].isna()
        sub = sub[ok]
    return sub


def _covered(entries: list[Entry], variant: str, rank, frozen_init, protocol) -> bool:
    for e in entries:
        if e.variant != variant or e.split != "validation":
            continue
        if isinstance(e.rank, int) and (pd.isna(rank) or int(rank) != e.rank):
            continue
        if e.protocol is not None and e.protocol != protocol:
            continue
        if e.frozen_init is not None:
            if e.frozen_init == NONE_INIT and frozen_init is not None:
                continue
            if e.frozen_init != NONE_INIT and not (frozen_init == e.frozen_init or
                                                   (frozen_init is None and e.frozen_init == "orthogonal")):
                continue
        return True
    return False


def _extra_entries(preset: Preset, runs: pd.DataFrame, entries: list[Entry]) -> list[Entry]:
    """Rows for groups of runs no entry covers. The summary also splits by protocol (experiment), so
    that no row mixes two."""
    if not preset.extra_variants or runs.empty:
        return []
    want = runs if "*" in preset.extra_variants else runs[runs["variant"].isin(preset.extra_variants)]
    by_protocol = preset.experiment is None
    cols = ["variant", "rank", "frozen_init", "experiment"]
    keys = want[cols].astype(object).where(want[cols].notna(), None)
    protocols = {k[3] for k in map(tuple, keys.values.tolist())}
    extra: list[Entry] = []
    for variant, rank, finit, exp in sorted(set(map(tuple, keys.values.tolist())),
                                            key=lambda k: (str(k[0]), -1 if k[1] is None else int(k[1]),
                                                           str(k[2]), str(k[3]))):
        protocol = (exp or "") if by_protocol else None
        if variant is None or _covered(entries + extra, variant, rank, finit, protocol):
            continue
        details = ([f"r={int(rank)}"] if rank is not None else []) + ([finit] if finit else [])
        label = variant + (f" ({', '.join(details)})" if details else "")
        if by_protocol and len(protocols) > 1:
            label += f" [{exp or 'no experiment'}]"
        extra.append(Entry(label, variant, None if rank is None else int(rank), "validation", None,
                           frozen_init=finit if finit else NONE_INIT, required=False, protocol=protocol))
    return extra


# ---------------------------------------------------------------- the preset
def build_preset(preset: Preset, runs: pd.DataFrame, choices: list[dict], published: pd.DataFrame,
                 test_scores: pd.DataFrame, opts: Options | None = None) -> PresetResult:
    opts = opts or Options()
    ci = opts.ci or preset.ci
    center = opts.center or preset.center
    if opts.center and not opts.ci and center != preset.center:  # the centre changed: its own interval
        ci = "order" if center == "median" else "t"
    try:
        check_ci(ci, center)
    except ValueError as error:
        raise ValueError(f"preset {preset.name}: {error}") from None
    col = score_column(opts.selection)
    runs, left_out = bind_protocol(preset, runs)
    entries = list(preset.entries)
    entries += _extra_entries(preset, runs, entries)
    tasks = list(preset.tasks)
    if not tasks:  # summary: whatever tasks are there, in GLUE order
        present = set(runs["task"].dropna())
        tasks = [t for t in TASK_ORDER if t in present] + sorted(present - set(TASK_ORDER))

    rows: list[dict] = []
    chosen: dict[tuple[str, str], pd.DataFrame] = {}
    for e in entries:
        for task in tasks:
            rank = e.rank if isinstance(e.rank, int) else None
            pub_row = None
            if e.pub:
                pub_row = find_published(published, *e.pub, task=run_task(task) if task == "mnli_all" else task,
                                         split=e.split, rank=rank)
                if e.rank == "published" and pub_row is not None and not pd.isna(pub_row["rank"]):
                    rank = int(pub_row["rank"])
            tcol = task_score_column(col, task)
            row: dict[str, Any] = {
                "preset": preset.name, "row": e.label, "variant": e.variant, "rank": rank,
                "frozen_init": None if e.frozen_init == NONE_INIT else e.frozen_init, "task": task,
                "split": e.split, "metric": task_metric(task), "selection": opts.selection, "ci": ci,
                "center": center, "experiment": preset.experiment,
            }
            if e.split == "test":
                names = [e.variant, e.label, e.label.split()[0]]
                p, pooled = find_test_entry(test_scores, task, names, rank)
                # MNLI given as one number (plain "mnli"): matched and mismatched pooled, so is its n
                n = TEST_SIZE["mnli"] + TEST_SIZE["mnli_mm"] if pooled else TEST_SIZE.get(task)
                row["test_pooled"] = pooled
                hw = test_half_width(run_task(task), p, task_metric(task), n)
                row.update(value=_pct(p), half_width=_pct(hw) if hw is not None else math.nan, test_n=n,
                           ci="bernoulli" if hw is not None else "–")
                row["ci_low"] = row["value"] - row["half_width"] if hw is not None else math.nan
                row["ci_high"] = row["value"] + row["half_width"] if hw is not None else math.nan
            else:
                sub = _match(runs, e, task, rank if e.rank is not None else None)
                setting, source = choose_setting(sub, opts.selection, opts.setting, choices)
                srun = sub[sub["setting"] == setting] if setting is not None else sub.iloc[0:0]
                chosen[(e.label, task)] = srun
                done = srun[(srun["status"] == "done") & srun[tcol].notna()]
                kinds = _no_score_kinds(srun, tcol)
                n_failed = sum(kinds.values())
                n_missing = int((srun["status"] == "missing").sum())
                n_total = max(len(srun), opts.expected_seeds or 0) if len(srun) else (opts.expected_seeds or 0)
                s = summarize(done[tcol].tolist(), ci, center, n_total, n_failed,
                              n_missing + max(0, n_total - len(srun)), opts.n_boot, opts.boot_seed,
                              bounds=metric_bounds(task_metric(task)), n_other=kinds)
                for k in ("value", "mean", "median", "sd", "half_width", "ci_low", "ci_high"):
                    s[k] = _pct(s[k])
                s.pop("ci"), s.pop("center")
                row.update(s)
                ran = done if len(done) else srun  # what ran: the scored runs' records, not a damaged one's
                first = ran.iloc[0] if len(ran) else None
                row.update(setting=setting, setting_source=source if setting else None,
                           lr=None if first is None else first["lr"],
                           batch_size=None if first is None else first["batch_size"],
                           effective_batch=None if first is None else first["effective_batch"],
                           precision=_joined(done.get("precision")), engine=_joined(done.get("engine")),
                           other_settings=_other_settings(sub, setting, tcol),
                           rank=rank if rank is not None else (None if first is None else first["rank"]),
                           trainable_adapter=srun["trainable_adapter"].dropna().max() if len(srun) else None,
                           trainable_with_head=srun["trainable_with_head"].dropna().max() if len(srun) else None)
            _published(row, pub_row, preset)
            if e.also:
                also = find_published(published, *e.also[1], task=task, split=e.split, rank=rank)
                row["also_label"] = e.also[0]
                row["also"] = float(also["value"]) if also is not None else math.nan
                row["also_pm"] = float(also["plus_minus"]) if also is not None else math.nan
            rows.append(row)
        if preset.average:
            rows.append(_average_row(preset, e, rows, tasks, published, opts.selection, ci, center))

    long = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["row", "task", "split", "value", "n_total"])
    # keep a row when it is required (a paper's row) or has runs of ours (all failed included)
    has_runs = lambda label: long[(long["row"] == label)].get("n_total", pd.Series(dtype=float)).fillna(0).gt(0).any()  # noqa: E731
    keep = [e for e in entries if e.required or has_runs(e.label)]
    long = long[long["row"].isin([e.label for e in keep])].reset_index(drop=True)
    chosen = {k: v for k, v in chosen.items() if k[0] in {e.label for e in keep}}
    messages = _messages(preset, runs, keep, tasks, long, test_scores, left_out)
    disp = _display(preset, keep, tasks, long)
    if preset.compare_each_to:  # every row against one (reporting/peft_zoo.py)
        from .peft_zoo import compare_each
        cmp_df, cmp_note = compare_each(preset, keep, tasks, chosen, opts, col, ci, center)
    else:
        cmp_df, cmp_note = _compare(preset, keep, tasks, chosen, opts, col, ci, center)
    return PresetResult(preset, long, disp, cmp_df, cmp_note, chosen, keep, messages, ci, center, left_out)


def _published(row: dict, pub_row, preset: Preset) -> None:
    """The published value beside ours, and Δ only when both are of the same model."""
    row["published"] = float(pub_row["value"]) if pub_row is not None else math.nan
    row["published_pm"] = float(pub_row["plus_minus"]) if pub_row is not None else math.nan
    row["published_trainable"] = (pub_row["trainable_params"] if pub_row is not None
                                  and not pd.isna(pub_row["trainable_params"]) else None)
    row["published_model"] = None if pub_row is None else pub_row.get("model")
    test_n = None if pub_row is None else pub_row.get("test_n")
    row["published_test_n"] = None if test_n is None or pd.isna(test_n) else int(test_n)
    row["diff"] = row["value"] - row["published"] if _finite(row.get("value")) and \
        _same_model(preset, row["published_model"]) else math.nan


def _same_model(preset: Preset, published_model) -> bool:
    """Δ is printed only between numbers of one model (never roberta-base against roberta-large)."""
    return not (preset.model and _given(published_model) and preset.model not in str(published_model))


def _average_row(preset, e, rows, tasks, published, selection, ci, center) -> dict:
    mine = [r for r in rows if r["row"] == e.label and r["task"] in tasks]
    vals = [r["value"] for r in mine]
    value = sum(vals) / len(vals) if vals and all(_finite(v) for v in vals) else math.nan
    pub = math.nan
    pub_row = find_published(published, *e.pub, task="average", split=e.split,
                             rank=e.rank if isinstance(e.rank, int) else None) if e.pub else None
    if pub_row is not None:
        pub = float(pub_row["value"])
    elif mine and all(_finite(r["published"]) for r in mine):
        pub = sum(r["published"] for r in mine) / len(mine)
    ns = [r.get("n", 0) for r in mine]
    row = {"preset": preset.name, "row": e.label, "variant": e.variant,
           "rank": e.rank if isinstance(e.rank, int) else None, "task": "average", "split": e.split,
           "metric": "average", "selection": selection, "ci": ci, "center": center, "value": value,
           "mean": value, "half_width": math.nan, "n": min(ns) if ns else 0,
           "n_label": "all tasks" if _finite(value) else "incomplete", "experiment": preset.experiment}
    _published(row, pub_row, preset)
    models = {r.get("published_model") for r in mine if _given(r.get("published_model"))}
    same = _same_model(preset, row["published_model"]) and all(_same_model(preset, m) for m in models)
    row["published"] = pub
    row["diff"] = value - pub if _finite(value) and _finite(pub) and same else math.nan
    return row


def _trainable(long: pd.DataFrame, label: str, column: str) -> str:
    vals = long[(long["row"] == label) & (long["task"] != "average")][column].dropna().unique().tolist()
    if column == "published_trainable":
        return " / ".join(str(v) for v in vals) if vals else "–"
    return " / ".join(fmt_count(v) for v in sorted(int(v) for v in vals)) if vals else "–"


def average_label(preset: Preset) -> str:
    return "Avg." if preset.average == "paper" else "Avg. (ours)"


def _display(preset: Preset, entries: list[Entry], tasks: list[str], long: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout as strings. Column names "<group>: <column>" become two header rows in LaTeX."""
    cells = {(r["row"], r["task"]): r for r in long.to_dict("records")}
    task_cols = tasks + (["average"] if preset.average else [])
    name = lambda t: average_label(preset) if t == "average" else task_name(t, tasks)  # noqa: E731
    if preset.layout == "tasks_as_rows":
        out = []
        for t in task_cols:
            line = {"Task": name(t), "Metric": task_metric(t) if t != "average" else "average"}
            for e in entries:
                r = cells.get((e.label, t), {})
                line[f"{e.label}: ours"] = fmt_cell(r) if r else "–"
                if e.split == "test":
                    line[f"{e.label}: n"] = "–" if not r or not _finite(r.get("value")) else f"{int(r['test_n']):,}"
                else:
                    line[f"{e.label}: n"] = r.get("n_label", "–") if r and r.get("n_total") else "–"
                line[f"{e.label}: {e.pub_label}"] = fmt_published(r) if r else "–"
                if e.also:
                    line[f"{e.label}: {e.also[0]}"] = fmt_published({"published": r.get("also"),
                                                                     "published_pm": r.get("also_pm")}) if r else "–"
                line[f"{e.label}: Δ"] = fmt(r.get("diff"), sign=True) if r else "–"
            out.append(line)
        return pd.DataFrame(out)
    out = []
    for e in entries:
        has_pub = long[(long["row"] == e.label)]["published"].apply(_finite).any()
        base = {"Method": e.label, "Trainable": _trainable(long, e.label, "trainable_adapter"), "": "ours"}
        nline = {"Method": "", "Trainable": "", "": "n"}
        pline = {"Method": "", "Trainable": _trainable(long, e.label, "published_trainable"), "": e.pub_label}
        dline = {"Method": "", "Trainable": "", "": "Δ"}
        for t in task_cols:
            r = cells.get((e.label, t), {})
            base[name(t)] = fmt_cell(r) if r else "–"
            nline[name(t)] = ("" if t == "average" else r.get("n_label", "–") if r.get("n_total") else "–") \
                if r else "–"
            pline[name(t)] = fmt_published(r) if r else "–"
            dline[name(t)] = fmt(r.get("diff"), sign=True) if r else "–"
        rline = []
        if e.rank == "published":  # the paper's own line: the rank per task (DeLoRA Table 1)
            ranks = {name(t): cells.get((e.label, t), {}).get("rank") for t in task_cols}
            rline = [{"Method": "", "Trainable": "", "": "rank",
                      **{k: "–" if v is None or pd.isna(v) else str(int(v)) for k, v in ranks.items()}}]
        out += [base, nline] + rline + ([pline, dline] if has_pub else [])
    return pd.DataFrame(out)


def _compare(preset, entries, tasks, chosen, opts, col, ci, center) -> tuple[pd.DataFrame, str]:
    want = opts.compare or (list(preset.compare) if preset.compare else None)
    val = [e for e in entries if e.split == "validation"]
    if not want:
        want = [e.label for e in val[:2]]
    if len(want) != 2:
        return pd.DataFrame(), "no comparison (needs two methods)"

    def pick(name):
        for e in val:
            if e.label == name:
                return e
        for e in val:
            if e.variant == name:
                return e
        return None

    a, b = pick(want[0]), pick(want[1])
    if a is None or b is None or a is b:
        return pd.DataFrame(), f"no comparison: {want} are not two validation rows of this preset"
    margin = opts.equivalence_margin
    rows, tests, tost_tests = [], set(), set()
    for t in tasks:
        tcol = task_score_column(col, t)
        ra, rb = chosen.get((a.label, t)), chosen.get((b.label, t))
        xa = [] if ra is None else ra[(ra["status"] == "done")][tcol].dropna().tolist()
        xb = [] if rb is None else rb[(rb["status"] == "done")][tcol].dropna().tolist()
        if not xa and not xb:
            continue
        bounds = metric_bounds(task_metric(t))
        sa = summarize(xa, ci, center, n_boot=opts.n_boot, boot_seed=opts.boot_seed, bounds=bounds)
        sb = summarize(xb, ci, center, n_boot=opts.n_boot, boot_seed=opts.boot_seed, bounds=bounds)
        c = compare_groups(xa, xb, center, opts.alpha, margin / 100.0, f"{margin:g} points")
        overlap = intervals_overlap(sa["ci_low"], sa["ci_high"], sb["ci_low"], sb["ci_high"])
        tests.add(c["test"]), tost_tests.add(c["tost_test"])
        rows.append({"task": t, "a": a.label, "b": b.label, "value_a": _pct(sa["value"]),
                     "value_b": _pct(sb["value"]), "diff": _pct(sa["value"]) - _pct(sb["value"]),
                     "n_a": sa["n"], "n_b": sb["n"], "statistic": c["statistic"], "df": c["df"], "p": c["p"],
                     "decision": c["decision"], "ci": ci,
                     "ci_a": f"[{fmt(_pct(sa['ci_low']))}, {fmt(_pct(sa['ci_high']))}]",
                     "ci_b": f"[{fmt(_pct(sb['ci_low']))}, {fmt(_pct(sb['ci_high']))}]",
                     "intervals_overlap": {True: "yes", False: "no", None: "n/a"}[overlap],
                     "tost_p": c["tost_p"], "equivalence": c["equivalence"], "test": c["test"]})
    if not rows:
        return pd.DataFrame(), f"no comparison: no finished seeds of {a.label} / {b.label}"
    what = "medians (their difference is shown; the test is rank-based)" if center == "median" else "means"
    note = (f"{a.label} vs {b.label}, {what}: {' / '.join(sorted(tests))} over seeds: 'different' if p < "
            f"{opts.alpha}, otherwise 'not significantly different' (with a few seeds that is low power, not "
            f"equivalence). Tied only when {' / '.join(sorted(tost_tests))} (margin ±{margin:g} points) "
            f"gives p < {opts.alpha}. No test where both have no spread (identical seeds). Interval "
            f"overlap uses the {CI_DESCRIPTION[ci].format(center=center)}.")
    return pd.DataFrame(rows), note


def _messages(preset, runs, entries, tasks, long, test_scores, left_out) -> list[str]:
    msgs = []
    val = long[(long["split"] == "validation") & (long["task"] != "average")]
    if left_out:
        msgs.append(f"Left out {sum(left_out.values())} runs of these tasks and methods with another "
                    f"protocol or model (this preset takes experiment={preset.experiment}"
                    + (f", grid in {list(preset.grids)} or null" if preset.grids else "")
                    + (f", model containing '{preset.model}'" if preset.model else "") + "): "
                    + "; ".join(f"{k}: {v}" for k, v in sorted(left_out.items())))
    if val.empty or "n_total" not in val or not val["n_total"].fillna(0).astype(float).gt(0).any():
        want = ", ".join(f"{e.variant}" + (f" r={e.rank}" if e.rank is not None else "")
                         + (f" ({e.frozen_init})" if e.frozen_init and e.frozen_init != NONE_INIT else "")
                         for e in entries if e.split == "validation")
        msgs.append(f"No runs match preset '{preset.name}'"
                    + (f" (experiment={preset.experiment})" if preset.experiment else "")
                    + (f" (model containing '{preset.model}')" if preset.model else "")
                    + f": expected tasks [{', '.join(tasks) or 'any'}] for methods [{want or 'any'}] "
                      "under <results_dir>/runs/<task>/<method>/<setting>/seed=<n>/.")
    else:
        for e in entries:
            if e.split != "validation":
                continue
            got = val[(val["row"] == e.label) & (val["n_total"].fillna(0).astype(float) > 0)]["task"].tolist()
            missing = [t for t in tasks if t not in got]
            if missing and got:
                msgs.append(f"{e.label}: no runs for tasks {missing}")
            elif not got and not e.pub:
                msgs.append(f"{e.label}: no runs (expected variant '{e.variant}'"
                            + (f", rank {e.rank}" if e.rank is not None else "") + f") for tasks {tasks}")
    if any(e.split == "test" for e in entries) and test_scores.empty:
        msgs.append("Test column empty: pass test_scores=FILE.csv (columns task, method, score) "
                    "with the GLUE server's numbers.")
    return msgs
