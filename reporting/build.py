"""Assemble one preset: a long table (one row per table cell, numbers), the paper-layout display table
(strings) and the two-method comparison. Percentages from here on (data stays fractions upstream)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .presets import Entry, Preset
from .published import find_published, find_test_score
from .selection import choose_setting, score_column
from .statistics import CI_DESCRIPTION, WELCH_TEST, intervals_overlap, summarize, test_half_width, welch
from .tasks import TASK_ORDER, display, main_metric

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

    @property
    def n_matched_runs(self) -> int:
        return int(sum(len(v) for v in self.chosen.values()))


# ---------------------------------------------------------------- formatting helpers (percent strings)
def fmt(v: Any, digits: int = 1, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or pd.isna(v):
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def fmt_cell(row: dict) -> str:
    if not _finite(row.get("value")):
        return "–"
    if row.get("split") == "test":
        return f"{fmt(row['value'])} ± {fmt(row.get('half_width'))}"
    if row.get("ci") == "bootstrap" and _finite(row.get("ci_low")):
        return f"{fmt(row['value'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
    if _finite(row.get("half_width")):
        return f"{fmt(row['value'])} ± {fmt(row['half_width'])}"
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


# ---------------------------------------------------------------- run matching
def _match(runs: pd.DataFrame, entry: Entry, task: str, rank) -> pd.DataFrame:
    sub = runs[(runs["task"] == task) & (runs["variant"] == entry.variant)]
    if rank is not None:
        sub = sub[sub["rank"] == int(rank)]
    if entry.frozen_init == NONE_INIT:
        sub = sub[sub["frozen_init"].isna()]
    elif entry.frozen_init is not None:
        ok = sub["frozen_init"] == entry.frozen_init
        if entry.frozen_init == "orthogonal":
            ok = ok | sub["frozen_init"].isna()
        sub = sub[ok]
    return sub


def _covered(entries: list[Entry], variant: str, rank, frozen_init) -> bool:
    for e in entries:
        if e.variant != variant or e.split != "validation":
            continue
        if isinstance(e.rank, int) and (pd.isna(rank) or int(rank) != e.rank):
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
    if not preset.extra_variants or runs.empty:
        return []
    want = runs if "*" in preset.extra_variants else runs[runs["variant"].isin(preset.extra_variants)]
    extra: list[Entry] = []
    keys = want[["variant", "rank", "frozen_init"]].astype(object).where(want[["variant", "rank", "frozen_init"]].notna(), None)
    for variant, rank, finit in sorted(set(map(tuple, keys.values.tolist())),
                                       key=lambda k: (str(k[0]), -1 if k[1] is None else int(k[1]), str(k[2]))):
        if variant is None or _covered(entries + extra, variant, rank, finit):
            continue
        label = variant if rank is None else f"{variant} (r={int(rank)}"
        label = label + (f", {finit})" if finit else ")") if rank is not None else label + (f" ({finit})" if finit else "")
        extra.append(Entry(label, variant, None if rank is None else int(rank), "validation", None,
                           frozen_init=finit if finit else NONE_INIT, required=False))
    return extra


# ---------------------------------------------------------------- the preset
def build_preset(preset: Preset, runs: pd.DataFrame, choices: list[dict], published: pd.DataFrame,
                 test_scores: pd.DataFrame, opts: Options | None = None) -> PresetResult:
    opts = opts or Options()
    ci = opts.ci or preset.ci
    center = opts.center or preset.center
    col = score_column(opts.selection)
    if preset.model and not runs.empty:
        runs = runs[runs["model"].isna() | runs["model"].astype(str).str.contains(preset.model, regex=False)]
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
                pub_row = find_published(published, *e.pub, task=task, split=e.split, rank=rank)
                if e.rank == "published" and pub_row is not None and not pd.isna(pub_row["rank"]):
                    rank = int(pub_row["rank"])
            row: dict[str, Any] = {
                "preset": preset.name, "row": e.label, "variant": e.variant, "rank": rank,
                "frozen_init": None if e.frozen_init == NONE_INIT else e.frozen_init, "task": task,
                "split": e.split, "metric": main_metric(task), "selection": opts.selection, "ci": ci,
                "center": center,
            }
            if e.split == "test":
                names = [e.variant, e.label, e.label.split()[0]]
                p = find_test_score(test_scores, task, names, rank)
                hw = test_half_width(task, p)
                row.update(value=_pct(p), half_width=_pct(hw) if hw is not None else math.nan,
                           ci="bernoulli" if hw is not None else "–")
                row["ci_low"] = row["value"] - row["half_width"] if hw is not None else math.nan
                row["ci_high"] = row["value"] + row["half_width"] if hw is not None else math.nan
            else:
                sub = _match(runs, e, task, rank if e.rank is not None else None)
                setting, source = choose_setting(sub, opts.selection, opts.setting, choices)
                srun = sub[sub["setting"] == setting] if setting is not None else sub.iloc[0:0]
                chosen[(e.label, task)] = srun
                done = srun[(srun["status"] == "done") & srun[col].notna()]
                n_failed = int(((srun["status"] == "failed") | ((srun["status"] == "done") & srun[col].isna())).sum())
                n_missing = int((srun["status"] == "missing").sum())
                n_total = max(len(srun), opts.expected_seeds or 0) if len(srun) else (opts.expected_seeds or 0)
                s = summarize(done[col].tolist(), ci, center, n_total, n_failed,
                              n_missing + max(0, n_total - len(srun)), opts.n_boot, opts.boot_seed)
                for k in ("value", "mean", "median", "sd", "half_width", "ci_low", "ci_high"):
                    s[k] = _pct(s[k])
                s.pop("ci"), s.pop("center")
                row.update(s)
                first = srun.iloc[0] if len(srun) else None
                row.update(setting=setting, setting_source=source if setting else None,
                           lr=None if first is None else first["lr"],
                           batch_size=None if first is None else first["batch_size"],
                           rank=rank if rank is not None else (None if first is None else first["rank"]),
                           trainable_adapter=srun["trainable_adapter"].dropna().max() if len(srun) else None,
                           trainable_with_head=srun["trainable_with_head"].dropna().max() if len(srun) else None)
            row["published"] = float(pub_row["value"]) if pub_row is not None else math.nan
            row["published_pm"] = float(pub_row["plus_minus"]) if pub_row is not None else math.nan
            row["published_trainable"] = (pub_row["trainable_params"] if pub_row is not None
                                          and not pd.isna(pub_row["trainable_params"]) else None)
            row["diff"] = row["value"] - row["published"] if _finite(row.get("value")) else math.nan
            rows.append(row)
        if preset.average:
            rows.append(_average_row(preset, e, rows, tasks, published, opts.selection, ci, center))

    long = pd.DataFrame(rows)
    # keep optional rows only when something of ours is there
    keep = [e for e in entries if e.required or long[(long["row"] == e.label)]["value"].apply(_finite).any()]
    long = long[long["row"].isin([e.label for e in keep])].reset_index(drop=True)
    chosen = {k: v for k, v in chosen.items() if k[0] in {e.label for e in keep}}
    messages = _messages(preset, runs, keep, tasks, long, test_scores)
    disp = _display(preset, keep, tasks, long)
    cmp_df, cmp_note = _compare(preset, keep, tasks, chosen, opts, col, ci, center)
    return PresetResult(preset, long, disp, cmp_df, cmp_note, chosen, keep, messages, ci, center)


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
    return {"preset": preset.name, "row": e.label, "variant": e.variant,
            "rank": e.rank if isinstance(e.rank, int) else None, "task": "average", "split": e.split,
            "metric": "average", "selection": selection, "ci": ci, "center": center, "value": value,
            "mean": value, "half_width": math.nan, "n": min(ns) if ns else 0,
            "n_label": "all tasks" if _finite(value) else "incomplete",
            "published": pub, "published_pm": math.nan, "published_trainable": None,
            "diff": value - pub if _finite(value) and _finite(pub) else math.nan}


def _trainable(long: pd.DataFrame, label: str, column: str) -> str:
    vals = long[(long["row"] == label) & (long["task"] != "average")][column].dropna().unique().tolist()
    if column == "published_trainable":
        return " / ".join(str(v) for v in vals) if vals else "–"
    return " / ".join(fmt_count(v) for v in sorted(int(v) for v in vals)) if vals else "–"


def _display(preset: Preset, entries: list[Entry], tasks: list[str], long: pd.DataFrame) -> pd.DataFrame:
    cells = {(r["row"], r["task"]): r for r in long.to_dict("records")}
    task_cols = tasks + (["average"] if preset.average else [])
    if preset.layout == "tasks_as_rows":
        out = []
        for t in task_cols:
            line = {"Task": display(t), "Metric": main_metric(t) if t != "average" else "average"}
            for e in entries:
                r = cells.get((e.label, t), {})
                line[f"{e.label}: ours"] = fmt_cell(r) if r else "–"
                if e.split == "test":
                    line[f"{e.label}: n"] = "–" if not r or not _finite(r.get("value")) else "server"
                else:
                    line[f"{e.label}: n"] = r.get("n_label", "–") if r and r.get("n_total") else "–"
                line[f"{e.label}: paper"] = fmt_published(r) if r else "–"
                line[f"{e.label}: Δ"] = fmt(r.get("diff"), sign=True) if r else "–"
            out.append(line)
        return pd.DataFrame(out)
    out = []
    for e in entries:
        has_pub = long[(long["row"] == e.label)]["published"].apply(_finite).any()
        base = {"Method": e.label, "Trainable": _trainable(long, e.label, "trainable_adapter"), "": "ours"}
        nline = {"Method": "", "Trainable": "", "": "n"}
        pline = {"Method": "", "Trainable": _trainable(long, e.label, "published_trainable"), "": "paper"}
        dline = {"Method": "", "Trainable": "", "": "Δ"}
        for t in task_cols:
            r = cells.get((e.label, t), {})
            base[display(t)] = fmt_cell(r) if r else "–"
            nline[display(t)] = ("" if t == "average" else r.get("n_label", "–") if r.get("n_total") else "–") \
                if r else "–"
            pline[display(t)] = fmt_published(r) if r else "–"
            dline[display(t)] = fmt(r.get("diff"), sign=True) if r else "–"
        out += [base, nline] + ([pline, dline] if has_pub else [])
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
    rows = []
    for t in tasks:
        ra, rb = chosen.get((a.label, t)), chosen.get((b.label, t))
        xa = [] if ra is None else ra[(ra["status"] == "done")][col].dropna().tolist()
        xb = [] if rb is None else rb[(rb["status"] == "done")][col].dropna().tolist()
        if not xa and not xb:
            continue
        sa = summarize(xa, ci, center, n_boot=opts.n_boot, boot_seed=opts.boot_seed)
        sb = summarize(xb, ci, center, n_boot=opts.n_boot, boot_seed=opts.boot_seed)
        w = welch(xa, xb, opts.alpha)
        overlap = intervals_overlap(sa["ci_low"], sa["ci_high"], sb["ci_low"], sb["ci_high"])
        rows.append({"task": t, "a": a.label, "b": b.label, "value_a": _pct(sa["value"]),
                     "value_b": _pct(sb["value"]), "diff": _pct(sa["value"]) - _pct(sb["value"]),
                     "n_a": sa["n"], "n_b": sb["n"], "t": w["t"], "df": w["df"], "p": w["p"],
                     "welch": w["decision"], "ci": ci,
                     "ci_a": f"[{fmt(_pct(sa['ci_low']))}, {fmt(_pct(sa['ci_high']))}]",
                     "ci_b": f"[{fmt(_pct(sb['ci_low']))}, {fmt(_pct(sb['ci_high']))}]",
                     "intervals_overlap": {True: "yes", False: "no", None: "n/a"}[overlap],
                     "test": w["test"]})
    if not rows:
        return pd.DataFrame(), f"no comparison: no finished seeds of {a.label} / {b.label}"
    note = (f"{a.label} vs {b.label}: {WELCH_TEST} over seeds, 'tied' if p >= {opts.alpha}, "
            f"'different' if p < {opts.alpha}; interval overlap uses the "
            f"{CI_DESCRIPTION[ci].format(center=center)}")
    return pd.DataFrame(rows), note


def _messages(preset, runs, entries, tasks, long, test_scores) -> list[str]:
    msgs = []
    val = long[(long["split"] == "validation") & (long["task"] != "average")]
    if val.empty or not val["n_total"].fillna(0).astype(float).gt(0).any():
        want = ", ".join(f"{e.variant}" + (f" r={e.rank}" if e.rank is not None else "")
                         + (f" ({e.frozen_init})" if e.frozen_init and e.frozen_init != NONE_INIT else "")
                         for e in entries if e.split == "validation")
        msgs.append(f"No runs match preset '{preset.name}'"
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
            elif not got:
                msgs.append(f"{e.label}: no runs (expected variant '{e.variant}'"
                            + (f", rank {e.rank}" if e.rank is not None else "") + f") for tasks {tasks}")
    if any(e.split == "test" for e in entries) and test_scores.empty:
        msgs.append("Test column empty: pass test_scores=FILE.csv (columns task, method, score) "
                    "with the GLUE server's numbers.")
    return msgs
