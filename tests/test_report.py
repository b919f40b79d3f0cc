"""report.py / reporting/: presets on a synthetic results tree (protocols, layouts, failed runs,
MNLI's two sets), figures, the submission zip, input errors and the CLI. The statistics themselves:
tests/test_report_statistics.py; the LaTeX: tests/test_report_latex.py."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from reporting import statistics as st
from reporting.collect import collect_runs, identify_variant
from reporting.presets import PRESETS, grid_experiment, preset_names
from reporting.published import ReportInputError, load_test_scores
from reporting.runner import ReportOptions, run_report

REPO = Path(__file__).resolve().parent.parent
METRIC = {"rte": "accuracy", "mrpc": "accuracy", "cola": "matthews", "stsb": "pearson", "sst2": "accuracy",
          "mnli": "accuracy_matched", "qnli": "accuracy", "qqp": "accuracy"}
QUIET = {"echo": lambda *_: None}


def report(results_dir, **options):
    return run_report(ReportOptions(results_dir=results_dir, **options), **QUIET)


def test_lora_of_lora_rule():
    assert identify_variant("lora_of_lora") == "delora_on_mnli_lora"
    assert identify_variant("lora_head_only") == "head_only_on_mnli_lora"
    assert identify_variant("delora") == "delora"
    assert identify_variant("head_only") == "head_only"


# ------------------------------------------------------------------ a synthetic results tree
def write_run(root: Path, task, method, seed, score, *, lr=5e-4, bs=32, rank=8, h="1a2b3c4d", status="done",
              init_from=None, experiment="symlora_paper", grid=None, trainable=147672, last=None, norms=False,
              preds=(), finished=True, frozen_init=None, model="roberta-base", mismatched=None, accumulation=1,
              curve=(), reason="non-finite training loss (nan) by step 3 of the epoch", precision="bf16",
              engine=None):
    setting = f"lr={lr},bs={bs},r={rank},h={h}"
    d = root / "runs" / task / method / setting / f"seed={seed}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(json.dumps({  # the shape train.py writes (JSON is YAML)
        "task": {"name": task}, "adapter": {"name": method, "rank": rank}, "seed": seed, "lr": lr,
        "batch_size": bs, "grad_accumulation": accumulation, "experiment": experiment, "grid_name": grid,
        "model": {"name_or_path": model}}))
    if not finished:
        return d
    metric = METRIC[task]
    hp = {"lr": lr, "batch_size": bs, "grad_accumulation": accumulation, "effective_batch": bs * accumulation,
          "epochs": 3, "rank": rank, "alpha": rank, "max_seq_len": 128,
          "weight_decay": 0.1, "warmup_ratio": 0.06, "init_from": init_from}
    best = {metric: score} if status == "done" else {}
    if mismatched is not None and status == "done":
        best["accuracy_mismatched"] = mismatched
    m = {"status": status, "reason": None if status == "done" else reason, "task": task, "method": method,
         "seed": seed, "setting": setting, "model": model, "experiment": experiment, "grid": grid, "precision": precision,
         "hyperparameters": hp, "adapter": {"name": method, "rank": rank, "alpha": rank, "options": (
             {"frozen_init": frozen_init} if frozen_init else {})}, "trainable": {"adapter": trainable, "with_head": trainable + 592130},
         "main_metric": metric,
         "best_epoch": 2 if status == "done" else None, "best": best,
         "last_epoch": 3 if status == "done" else None,
         "last": {metric: score - 0.01 if last is None else last} if status == "done" else {},
         "train_examples": 100, "time_s": 1.0, "examples_per_s": 100.0, "versions": {}, "device": "cpu"}
    if engine:
        m["engine"] = engine
    (d / "metrics.json").write_text(json.dumps(m))
    if curve:  # epochs.jsonl: (validation score, training loss) per epoch, as training/fit.py writes it
        (d / "epochs.jsonl").write_text("".join(json.dumps(
            {"epoch": i, "train_loss": loss, "lr": lr, "validation": {metric: value}}) + "\n"
            for i, (value, loss) in enumerate(curve, 1)))
    if norms:
        (d / "layer_norms.json").write_text(json.dumps([
            {"module": f"roberta.encoder.layer.{l}.attention.self.{t}", "layer": l, "target": t, "lambda": 1.0,
             "base_norm": 20.0 - l + seed * 0.1, "delta_norm": 0.5 * l} for l in range(12) for t in ("query", "value")]))
    if preds:
        (d / "predictions").mkdir(exist_ok=True)
        for name in preds:
            (d / "predictions" / name).write_text("index\tprediction\n0\tentailment\n")
    return d


RTE_SYM = [0.80, 0.82, 0.84, 0.86]          # seed 4 failed -> n = 4 of 5
MRPC_SYM = [0.86, 0.87, 0.88, 0.89, 0.90]
COLA_SYM = [0.60, 0.62, 0.61, 0.63, 0.64]
RTE_LORA = [0.70, 0.72, 0.71, 0.73, 0.69]
MRPC_LORA = [0.85, 0.88, 0.87, 0.89, 0.86]
MNLI_M, MNLI_MM = [0.86, 0.87, 0.865], [0.855, 0.866, 0.87]


def curve_of(seed: int) -> list[tuple[float, float]]:
    return [(0.5 + 0.1 * epoch + 0.01 * seed, 0.7 - 0.1 * epoch - 0.02 * seed) for epoch in range(3)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    # SymLoRA paper protocol (experiment=symlora_paper)
    for s, v in enumerate(RTE_SYM):
        write_run(root, "rte", "symlora", s, v, norms=True, preds=("RTE.tsv",), grid="symlora_table1",
                  curve=curve_of(s))
    write_run(root, "rte", "symlora", 4, None, status="failed", grid="symlora_table1")
    for s in range(5):  # a worse setting: best-mean selection must not pick it
        write_run(root, "rte", "symlora", s, 0.60, lr=1e-4, h="deadbeef")
    for s, v in enumerate(MRPC_SYM):
        write_run(root, "mrpc", "symlora", s, v, norms=True, preds=("MRPC.tsv",))
    for s, v in enumerate(COLA_SYM):
        write_run(root, "cola", "symlora", s, v, norms=True)
    for s, (m, mm) in enumerate(zip(MNLI_M, MNLI_MM)):
        write_run(root, "mnli", "symlora", s, m, mismatched=mm, norms=True)
    for s, v in enumerate(RTE_LORA):
        write_run(root, "rte", "lora", s, v, trainable=294912, norms=True)
    for s, v in enumerate(MRPC_LORA[:4]):
        write_run(root, "mrpc", "lora", s, v, trainable=294912)
    write_run(root, "mrpc", "lora", 4, None, trainable=294912, finished=False)  # missing/unfinished
    for s in range(3):  # every QNLI LoRA seed failed: the row stays, "0 of 3, 3 crashed"
        write_run(root, "qnli", "lora", s, None, status="failed", trainable=294912, reason="CUDA out of memory")
    # the same rte LoRA setting under another protocol (the DeLoRA report's): never mixed in
    for s in range(2):
        write_run(root, "rte", "lora", s, 0.99, h="0000aaaa", experiment="delora_report", grid="delora_table1")
    # LoRA paper protocol: the sweep chose the lower-lr LoRA setting on cola even though the other is better
    for s in range(3):
        write_run(root, "cola", "lora", s, 0.55 + s * 0.01, lr=4e-4, h="cccccccc", trainable=294912,
                  experiment="lora_paper", grid="lora_table2")
        write_run(root, "cola", "lora", s, 0.65, lr=5e-4, h="dddddddd", trainable=294912,
                  experiment="lora_paper", grid="lora_table2")
        write_run(root, "cola", "lora", s, 0.50, h="eeee0000", bs=16, accumulation=8, trainable=294912,
                  experiment="lora_paper_scripts", grid="lora_table2_scripts")
    (root / "sweeps" / "lora_table2").mkdir(parents=True)
    (root / "sweeps" / "lora_table2" / "choices.json").write_text(json.dumps([
        {"task": "cola", "method": "lora", "rank": 8, "setting": "lr=0.0004,bs=32,r=8,h=cccccccc",
         "lr": 4e-4, "batch_size": 32, "score_mean": 0.56, "n_seeds": 3}]))
    # DeLoRA report protocol: ranks, LoRA of LoRA and its head-only baseline
    for r, base in ((16, 0.47), (32, 0.54), (64, 0.62)):
        for s in range(3):
            write_run(root, "cola", "delora", s, base + 0.01 * s, rank=r, trainable=24 * r * r,
                      experiment="delora_report", grid="delora_table2")
    mnli_lora = str(root / "runs/mnli/lora/lr=0.0005,bs=16,r=8,h=00000000/seed=0")
    for s in range(3):
        write_run(root, "mrpc", "lora_of_lora", s, 0.77 + 0.01 * s, init_from=mnli_lora, trainable=1536,
                  h="eeeeeeee", experiment="delora_report")
        write_run(root, "mrpc", "lora_head_only", s, 0.71, init_from=mnli_lora, trainable=0, h="ffffffff",
                  experiment="delora_report")
    # Asymmetry protocol: roberta-large; one roberta-base run of it is left out
    for s in range(3):
        write_run(root, "rte", "b_only", s, 0.75 + 0.01 * s, trainable=147456, frozen_init="orthogonal",
                  experiment="asymmetry", model="roberta-large")
        write_run(root, "rte", "a_only", s, 0.70, trainable=147456, experiment="asymmetry", model="roberta-large")
    write_run(root, "rte", "b_only", 0, 0.5, h="bbbb0000", experiment="asymmetry", model="roberta-base")
    return root


@pytest.fixture(scope="module")
def test_scores(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("scores") / "test.csv"
    p.write_text("task,method,score\nRTE,symlora,78.0\nCoLA,symlora,60\nMRPC,symlora,0.88\n"
                 "MNLI-m,symlora,86.1\nMNLI-mm,symlora,85.4\n")
    return p


@pytest.fixture(scope="module")
def reports(tree, test_scores):
    out = report(tree, preset="papers", test_scores=str(test_scores))
    out["all"] = report(tree, preset="all")["all"]
    return out


def cell(res, row, task, split="validation"):
    sub = res.long[(res.long["row"] == row) & (res.long["task"] == task) & (res.long["split"] == split)]
    assert len(sub) == 1, (row, task, res.long[["row", "task"]])
    return sub.iloc[0]


def test_collect_counts_failed_and_missing(tree):
    runs = collect_runs(tree)
    assert {"task", "method", "rank", "lr", "batch_size", "seed", "status", "best_score", "last_score",
            "trainable_adapter", "trainable_with_head", "experiment", "grid", "effective_batch"} <= set(runs.columns)
    assert (runs["status"] == "failed").sum() == 4
    assert (runs["status"] == "missing").sum() == 1
    missing = runs[runs["status"] == "missing"].iloc[0]
    assert (missing["task"], missing["method"], missing["rank"], missing["seed"]) == ("mrpc", "lora", 8, 4)
    assert set(runs[runs["method"] == "lora_of_lora"]["variant"]) == {"delora_on_mnli_lora"}
    assert set(runs[runs["grid"] == "lora_table2_scripts"]["effective_batch"]) == {128}


def test_symlora_table1(reports, tree):
    res = reports["symlora_table1"]
    rte = cell(res, "SymLoRA validation", "rte")
    assert rte["n_label"] == "4 of 5, 1 diverged (NaN)" and rte["n_failed"] == 1
    assert rte["setting"] == "lr=0.0005,bs=32,r=8,h=1a2b3c4d"        # best mean, not the 0.60 setting
    assert rte["value"] == pytest.approx(83.0)
    assert rte["half_width"] == pytest.approx(100 * 1.96 * st.sample_sd(RTE_SYM) / 2)  # normal (paper)
    assert rte["published"] == 85 and rte["diff"] == pytest.approx(-2.0)
    mrpc_lora = cell(res, "LoRA validation", "mrpc")
    assert mrpc_lora["n_label"] == "4 of 5, 1 missing" and mrpc_lora["n_missing"] == 1
    t_rte = cell(res, "SymLoRA test", "rte", "test")
    assert t_rte["value"] == pytest.approx(78.0)
    assert t_rte["half_width"] == pytest.approx(100 * 1.96 * math.sqrt(0.78 * 0.22 / 3000))
    assert cell(res, "SymLoRA test", "cola", "test")["value"] == pytest.approx(60.0)  # "60" is 60%
    assert math.isnan(cell(res, "SymLoRA test", "cola", "test")["half_width"])
    disp = res.display
    assert list(disp["Task"]) == ["CoLA", "QNLI", "SST-2", "MNLI-m", "MNLI-mm", "QQP", "RTE", "MRPC", "STS-B"]
    assert {"SymLoRA validation: ours", "SymLoRA validation: n", "SymLoRA validation: paper",
            "SymLoRA validation: Δ", "SymLoRA test: ours", "LoRA validation: ours"} <= set(disp.columns)
    row = disp[disp["Task"] == "RTE"].iloc[0]
    assert row["SymLoRA validation: n"] == "4 of 5, 1 diverged (NaN)" and row["SymLoRA validation: ours"].startswith("83.0 ± ")
    assert row["SymLoRA test: ours"] == "78.0 ± 1.5" and row["SymLoRA test: n"] == "3,000"
    assert disp[disp["Task"] == "CoLA"].iloc[0]["SymLoRA test: ours"] == "60.0 ± –"
    for ext in ("md", "csv", "tex"):
        assert (tree / "tables" / f"symlora_table1.{ext}").stat().st_size > 100
    assert (tree / "tables" / "symlora_table1_compare.md").exists()


def test_mnli_matched_and_mismatched_each_with_its_own_n(reports):
    res = reports["symlora_table1"]
    m, mm = cell(res, "SymLoRA validation", "mnli"), cell(res, "SymLoRA validation", "mnli_mm")
    assert m["value"] == pytest.approx(100 * sum(MNLI_M) / 3) and m["metric"] == "accuracy_matched"
    assert mm["value"] == pytest.approx(100 * sum(MNLI_MM) / 3) and mm["metric"] == "accuracy_mismatched"
    tm, tmm = cell(res, "SymLoRA test", "mnli", "test"), cell(res, "SymLoRA test", "mnli_mm", "test")
    assert tm["half_width"] == pytest.approx(100 * 1.96 * math.sqrt(0.861 * 0.139 / 9796))
    assert tmm["half_width"] == pytest.approx(100 * 1.96 * math.sqrt(0.854 * 0.146 / 9847))
    assert (tm["test_n"], tmm["test_n"]) == (9796, 9847)
    # the paper's one MNLI test number: its ± counts matched + mismatched
    assert tm["published_test_n"] == 9796 + 9847 and tm["published_pm"] == 0.5


def test_published_test_half_widths_follow_the_n_each_score_counts(reports):
    """Every SymLoRA Table 1 accuracy test score whose ± is stored: 1.96·√(p(1−p)/n) with the stored
    n, rounded as printed, gives the printed ±."""
    res = reports["symlora_table1"]
    test = res.long[(res.long["split"] == "test") & res.long["published_pm"].notna()]
    assert len(test) >= 1
    for r in test.itertuples():
        assert r.metric not in st.NON_BERNOULLI
        hw = 100 * st.bernoulli_half_width(r.published / 100, r.published_test_n)
        assert round(hw, 1) == r.published_pm, r.task


def test_lora_paper_exact_numbers_beside_the_symlora_papers_floored_copies(reports):
    res = reports["symlora_table1"]
    for task, floored, exact in (("qqp", 90, 90.8), ("rte", 86, 86.6), ("mrpc", 89, 89.7)):
        c = cell(res, "LoRA validation", task)
        assert (c["published"], c["also"], c["also_label"]) == (floored, exact, "LoRA paper")
    cols = set(res.display.columns)
    assert {"LoRA validation: SymLoRA paper (floored)", "LoRA validation: LoRA paper"} <= cols


def test_a_row_takes_one_protocol_and_counts_the_others(reports):
    res = reports["symlora_table1"]
    rte = cell(res, "LoRA validation", "rte")
    assert rte["value"] == pytest.approx(100 * sum(RTE_LORA) / 5)  # not the delora_report runs at 0.99
    assert res.left_out["experiment=delora_report, grid=delora_table1"] == 2
    assert res.left_out["experiment=lora_paper, grid=lora_table2"] == 6
    assert any(m.startswith("Left out") and "experiment=symlora_paper" in m for m in res.messages)
    # the two readings of the LoRA paper's batch never mix
    t2, t2s = reports["lora_table2"], reports["lora_table2_scripts"]
    assert cell(t2, "LoRA (r=8)", "cola")["value"] == pytest.approx(56.0)
    assert cell(t2s, "LoRA (r=8)", "cola")["value"] == pytest.approx(50.0)
    assert cell(t2s, "LoRA (r=8)", "cola")["effective_batch"] == 128


def test_a_method_whose_runs_all_failed_keeps_its_row(reports):
    q = cell(reports["symlora_table1"], "LoRA validation", "qnli")
    assert q["n_label"] == "0 of 3, 3 crashed" and math.isnan(q["value"])
    s = reports["all"]
    assert "0 of 3, 3 crashed" in set(s.long["n_label"])


def test_sweep_choice_wins_and_the_median_gets_its_own_interval(reports):
    c = cell(reports["lora_table2"], "LoRA (r=8)", "cola")
    assert c["setting"] == "lr=0.0004,bs=32,r=8,h=cccccccc" and c["setting_source"] == "sweep:lora_table2"
    assert c["value"] == pytest.approx(56.0) and c["center"] == "median" and c["ci"] == "order"
    assert (c["ci_low"], c["ci_high"]) == (pytest.approx(55.0), pytest.approx(57.0))  # [min, max] of 3
    assert c["coverage"] == pytest.approx(0.75)


def test_layouts_as_in_the_papers(reports):
    t1 = reports["delora_table1"]
    d = cell(t1, "DeLoRA (rank as published)", "cola")
    assert d["rank"] == 64 and d["value"] == pytest.approx(63.0) and d["published"] == pytest.approx(62.1)
    assert {"Full FT", "BitFit"} <= set(t1.long["row"])  # published rows stay without runs of ours
    assert "Avg. (ours)" in t1.display.columns and "Avg" not in t1.display.columns
    t2 = reports["delora_table2"]
    assert list(dict.fromkeys(t2.long["row"])) == ["DeLoRA r=16", "DeLoRA r=32", "DeLoRA r=64"]
    assert cell(t2, "DeLoRA r=16", "cola")["published"] == pytest.approx(47.2)
    assert cell(t2, "DeLoRA r=32", "cola")["trainable_adapter"] == 24 * 32 * 32
    t3 = reports["delora_table3"]  # methods as rows, tasks across (not transposed)
    assert list(t3.display.columns)[:3] == ["Method", "Trainable", ""]
    assert {"MRPC", "RTE", "STS-B"} <= set(t3.display.columns)
    assert cell(t3, "LoRA of LoRA", "mrpc")["value"] == pytest.approx(78.0)
    assert cell(t3, "Head only on MNLI LoRA", "mrpc")["value"] == pytest.approx(71.0)
    lt = reports["lora_table2"]
    assert {"Full FT", "BitFit"} <= set(lt.display["Method"]) and "Avg." in lt.display.columns


def test_asymmetry_is_roberta_large_and_delta_stays_within_a_model(reports):
    a = reports["asymmetry"]
    assert cell(a, "B-only orthogonal (r=8)", "rte")["value"] == pytest.approx(76.0)
    assert cell(a, "A-only orthogonal (r=8)", "rte")["value"] == pytest.approx(70.0)  # unrecorded init -> orthogonal
    assert cell(a, "B-only orthogonal (r=8)", "average")["published"] == pytest.approx(87.4)
    assert a.left_out["model=roberta-base"] == 1 and a.left_out["experiment=symlora_paper, grid=null"] > 0
    from reporting.build import _same_model
    assert not _same_model(PRESETS["asymmetry"], "roberta-base") and _same_model(PRESETS["asymmetry"], "roberta-large")


def test_comparison_wording(reports):
    c = reports["symlora_table1"].compare.set_index("task")
    ref = stats.ttest_ind(RTE_SYM, RTE_LORA, equal_var=False)
    assert c.loc["rte", "p"] == pytest.approx(ref.pvalue)
    assert c.loc["rte", "decision"] == f"different (Welch p = {ref.pvalue:.3g})"
    ref_m = stats.ttest_ind(MRPC_SYM, MRPC_LORA[:4], equal_var=False)
    assert ref_m.pvalue >= 0.05 and c.loc["mrpc", "decision"].startswith("not significantly different (Welch p = ")
    assert "tied" not in " ".join(c["decision"])
    assert c.loc["mrpc", "equivalence"].startswith(("equivalent within", "equivalence not shown within"))


def test_figures_are_valid_png_and_pdf(reports, tree):
    for stem in ("symlora_table1_bars", "symlora_table1_layer_norms", "symlora_table1_curves"):
        png, pdf = tree / "figures" / f"{stem}.png", tree / "figures" / f"{stem}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1024
        assert pdf.read_bytes()[:4] == b"%PDF" and pdf.stat().st_size > 1024


def test_figure1_rows_are_symlora_above_lora_and_bars_start_at_zero(tree, tmp_path):
    import matplotlib.pyplot as plt

    from reporting import figures

    saved = {}
    real_save = figures._save
    figures._save = lambda fig, out_dir, stem: saved.setdefault(stem, fig) and []
    try:
        res = report(tree, preset="symlora_table1", submission=False)["symlora_table1"]
    finally:
        figures._save = real_save
    fig1 = saved["symlora_table1_layer_norms"]
    axes = [ax for ax in fig1.axes if ax.get_label() != "<colorbar>"][:6]
    assert axes[0].get_ylabel().startswith("SymLoRA") and axes[3].get_ylabel().startswith("LoRA")
    assert [ax.get_title() for ax in axes[:3]][0].startswith(r"$\|\lambda W_0\|_F - ")
    bars = saved["symlora_table1_bars"]
    assert bars.axes[0].get_ylim()[0] <= 0  # from zero (tests/test_report_figures.py reads the bars back)
    plt.close("all")
    assert res is not None


def test_learning_curves_are_the_seed_mean_with_the_seed_range(tree):
    import matplotlib.pyplot as plt

    from reporting import figures

    saved = {}
    real_save = figures._save
    figures._save = lambda fig, out_dir, stem: saved.setdefault(stem, fig) and []
    try:
        report(tree, preset="symlora_table1", submission=False)
    finally:
        figures._save = real_save
    fig = saved["symlora_table1_curves"]
    score_ax, loss_ax = fig.axes[0], fig.axes[1]  # RTE is the only task with curves: one column
    assert score_ax.get_title() == "RTE" and loss_ax.get_ylabel() == "training loss"
    # the chosen RTE setting's four finished seeds (the failed fifth has no epochs)
    (line,) = score_ax.get_lines()
    seeds = [curve_of(s) for s in range(4)]
    assert list(line.get_xdata()) == [1, 2, 3]
    assert line.get_ydata() == pytest.approx([100 * np.mean([c[e][0] for c in seeds]) for e in range(3)])
    assert loss_ax.get_lines()[0].get_ydata() == pytest.approx([np.mean([c[e][1] for c in seeds]) for e in range(3)])
    band = score_ax.collections[0].get_paths()[0].vertices[:, 1]  # fill_between: lowest to highest seed
    assert band.min() == pytest.approx(100 * seeds[0][0][0]) and band.max() == pytest.approx(100 * seeds[3][2][0])
    assert line.get_label().endswith("(n=4)")
    plt.close("all")


def test_read_epochs_stops_at_a_half_written_line(tmp_path):
    from rundir import read_epochs

    (tmp_path / "epochs.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\n{"epoch": 2, "train_lo')
    assert read_epochs(tmp_path) == [{"epoch": 1, "train_loss": 0.5}]
    assert read_epochs(tmp_path / "nowhere") == []


def test_submission_zip_of_partial_runs_is_refused_unless_asked_for(reports, tree):
    # the runs predicted 1 row of RTE and MRPC, no other file: the GLUE server would reject the zip
    z = tree / "submission" / "symlora.zip"
    assert not z.exists()
    msgs: list[str] = []
    run_report(ReportOptions(results_dir=tree, preset="symlora_table1", figures=False), echo=msgs.append)
    refusal = next(m for m in msgs if m.startswith(f"submission: {z} not written"))
    assert "RTE.tsv: holds 1 row; the GLUE server expects 3,000 rows" in refusal
    assert "AX.tsv: missing; the GLUE server expects 1,104 rows" in refusal
    assert sum(line.startswith("  ") and ".tsv: " in line for line in refusal.splitlines()) == 11
    assert not z.exists()
    msgs.clear()
    run_report(ReportOptions(results_dir=tree, preset="symlora_table1", figures=False, submission_partial=True),
               echo=msgs.append)
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == ["MRPC.tsv", "RTE.tsv"]
    assert any(m.startswith(f"submission: {z} (2 files), PARTIAL") and "RTE.tsv: holds 1 row" in m
               for m in msgs)


def test_every_paper_preset_is_its_grid_and_names_an_experiment():
    for name, preset in PRESETS.items():
        assert preset.grid == name and (REPO / "configs" / "grid" / f"{name}.yaml").exists()
        exp = grid_experiment(name)
        assert exp == preset.experiment and (REPO / "configs" / "experiment" / f"{exp}.yaml").exists()
    assert set(PRESETS["delora_table1"].grids) == {"delora_table1", "delora_table2", "delora_table3"}


# ------------------------------------------------------------------ bad input: clear messages
def test_missing_or_empty_results_dir(tmp_path):
    with pytest.raises(ReportInputError, match="no such directory"):
        report(tmp_path / "typo")
    msgs = []
    out = run_report(ReportOptions(results_dir=tmp_path, preset="papers", figures=False), echo=msgs.append)
    assert any("No run directories" in m for m in msgs)
    assert {"Full FT", "BitFit"} <= set(out["lora_table2"].display["Method"])  # published only
    assert run_report(ReportOptions(results_dir=tmp_path), echo=msgs.append) == {"all": None}


@pytest.mark.parametrize("text, message", [
    ("task,method,score\nRTE,symlora,78\nCoLA,symlora,abc\n", ":3: score 'abc' is not a number"),
    ("task,method,score\nRTE,symlora,78,extra\n", ":2: 4 fields, the header has 3"),
    ("task,score\nRTE,78\n", ":1: test-score CSV needs columns"),
])
def test_test_score_errors_name_file_and_line(tmp_path, text, message):
    p = tmp_path / "scores.csv"
    p.write_text(text)
    with pytest.raises(ReportInputError, match=message.replace("(", r"\(")) as info:
        load_test_scores(p)
    assert str(p) in str(info.value)


def test_whole_number_scores_are_percentages(tmp_path):
    p = tmp_path / "scores.csv"
    p.write_text("task,method,score\nRTE,symlora,60\nSST-2,symlora,0.95\n")
    assert load_test_scores(p)["score"].tolist() == [0.60, 0.95]


def test_unknown_option_and_preset(tmp_path):
    with pytest.raises(ReportInputError, match="unknown report option"):
        ReportOptions.from_mapping({"results_dir": tmp_path, "presett": "x"})
    with pytest.raises(KeyError, match="unknown preset"):
        report(tmp_path, preset="symlora_tabel1")


@pytest.mark.parametrize("key,value,accepts", [("figures", "flase", "true | false"), ("ci", "tt", "bootstrap"),
                                               ("alpha", 0, "a number > 0"), ("expected_seeds", "abc", "integer")])
def test_a_bad_option_value_is_refused_naming_the_key_and_its_choices(tmp_path, key, value, accepts):
    with pytest.raises(ReportInputError, match="invalid option") as err:
        ReportOptions.from_mapping({"results_dir": tmp_path, key: value})
    assert f"{key}={value!r}" in str(err.value) and accepts in str(err.value)


def test_cli_end_to_end(tree, tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "report.py"), f"results_dir={tree}", "ci=t",
                          "selection=last_epoch"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "| Method" in out.stdout and "symlora (r=8)" in out.stdout and "4 of 5" in out.stdout
    assert (tree / "tables" / "all.md").exists() and not (tmp_path / "outputs").exists()
    bad = subprocess.run([sys.executable, str(REPO / "report.py"), f"results_dir={tmp_path / 'nope'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such directory" in bad.stderr and "Traceback" not in bad.stderr


def test_help_lists_the_presets_and_imports_nothing_heavy():
    out = subprocess.run([sys.executable, str(REPO / "report.py"), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    for name in preset_names():
        assert name in out.stdout
    probe = ("import sys, report; heavy = [m for m in ('pandas', 'torch', 'matplotlib') if m in sys.modules]; "
             "print(heavy)")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr


# ------------------------------------------------------------------ a referee's cases, on small trees
def _md(root: Path, preset: str) -> str:
    return (root / "tables" / f"{preset}.md").read_text()


def test_median_table_compares_with_a_rank_test_not_welch(tmp_path):
    a = [0.880, 0.881, 0.885, 0.886, 0.800]   # median above, mean below b
    b = [0.870, 0.875, 0.878, 0.890, 0.895]
    for s in range(5):
        write_run(tmp_path, "mrpc", "lora", s, a[s], experiment="lora_paper", grid="lora_table2")
    (tmp_path / "runs_b").mkdir()
    res = report(tmp_path, preset="lora_table2", figures=False, submission=False,
                 compare=["LoRA (r=8)", "LoRA (r=8)"])["lora_table2"]
    assert res.compare.empty  # one row against itself: refused
    # two validation rows of one preset under a median centre: the summary's rows with center=median
    for s in range(5):
        write_run(tmp_path, "mrpc", "symlora", s, b[s], experiment="lora_paper", grid="lora_table2")
    res = report(tmp_path, preset="all", center="median", figures=False, submission=False)["all"]
    c = res.compare.iloc[0]
    ref = stats.mannwhitneyu(a, b, alternative="two-sided") if c["a"].startswith("lora") else \
        stats.mannwhitneyu(b, a, alternative="two-sided")
    assert c["p"] == pytest.approx(ref.pvalue) and "Mann-Whitney" in c["decision"] and "Welch" not in c["decision"]
    assert abs(c["diff"]) == pytest.approx(0.3)  # the medians' difference, in points
    cmp_md = (tmp_path / "tables" / "all_compare.md").read_text()
    assert "Mann-Whitney" in cmp_md and "medians" in cmp_md


def test_identical_seeds_get_a_mark_and_no_test(tmp_path):
    for s in range(5):
        write_run(tmp_path, "rte", "symlora", s, 0.94, grid="symlora_table1")
        write_run(tmp_path, "rte", "lora", s, 0.95, grid="symlora_table1")
    res = report(tmp_path, preset="symlora_table1", figures=False, submission=False)["symlora_table1"]
    c = res.compare.set_index("task").loc["rte"]
    assert math.isnan(c["p"]) and c["decision"] == st.NO_SPREAD_NOTE and c["equivalence"] == st.NO_SPREAD_NOTE
    row = res.display[res.display["Task"] == "RTE"].iloc[0]
    assert row["SymLoRA validation: ours"] == "94.0 ± 0.0†"
    assert "† every seed has the same score" in _md(tmp_path, "symlora_table1")


def test_two_seeds_clipped_and_each_cells_coverage(tmp_path):
    for s, v in enumerate((0.90, 0.94)):
        write_run(tmp_path, "rte", "symlora", s, v, grid="symlora_table1")
    for s, v in enumerate((0.70, 0.72, 0.74, 0.71, 0.73)):
        write_run(tmp_path, "rte", "lora", s, v, grid="symlora_table1")
    res = report(tmp_path, preset="symlora_table1", ci="t", figures=False, submission=False)["symlora_table1"]
    c = cell(res, "SymLoRA validation", "rte")
    assert c["ci_high"] == 100.0 and c["clipped"]  # 92.0 ± 25.4 would pass 100
    assert cell(res, "SymLoRA validation", "rte")["value"] == pytest.approx(92.0)
    row = res.display[res.display["Task"] == "RTE"].iloc[0]
    assert row["SymLoRA validation: ours"].startswith("92.0 [66.6, 100.0]‡")
    # the paper's normal interval: each cell's own coverage, 70% at 2 seeds, 87.8% at 5
    res = report(tmp_path, preset="symlora_table1", figures=False, submission=False)["symlora_table1"]
    row = res.display[res.display["Task"] == "RTE"].iloc[0]
    assert row["SymLoRA validation: ours"].endswith("(70%)")
    assert row["LoRA validation: ours"].endswith("(87.8%)")
    assert "the SymLoRA paper's normal interval" in _md(tmp_path, "symlora_table1")
    # order statistics: 2 seeds' [min, max] covers 50%
    for s in range(2):
        write_run(tmp_path, "cola", "lora", s, 0.6 + 0.01 * s, experiment="lora_paper", grid="lora_table2")
    res = report(tmp_path, preset="lora_table2", figures=False, submission=False)["lora_table2"]
    assert res.display.iloc[0]["CoLA"].endswith("(50%)")


def test_notes_under_the_table_and_failures_named_by_kind(tmp_path):
    write_run(tmp_path, "rte", "symlora", 0, 0.8, grid="symlora_table1")
    write_run(tmp_path, "rte", "symlora", 1, None, status="failed", grid="symlora_table1")
    write_run(tmp_path, "rte", "symlora", 2, None, status="failed", reason="CUDA error: out of memory",
              grid="symlora_table1")
    res = report(tmp_path, preset="symlora_table1", figures=False, submission=False)["symlora_table1"]
    assert cell(res, "SymLoRA validation", "rte")["n_label"] == "1 of 3, 1 crashed, 1 diverged (NaN)"
    md = _md(tmp_path, "symlora_table1")
    assert "LoRA validation: no runs" in md and "Test column empty: pass test_scores" in md
    tex = (tmp_path / "tables" / "symlora_table1.tex").read_text()
    assert "\\footnotesize" in tex and "no runs" in tex  # the notes as the table's footnote


def test_a_hand_run_beside_the_sweeps_choice_is_named(tmp_path):
    for s in range(2):
        write_run(tmp_path, "rte", "symlora", s, 0.27, h="11111111", grid="symlora_table1")
    write_run(tmp_path, "rte", "symlora", 0, 0.67, h="22222222")  # by hand, same protocol, another setting
    (tmp_path / "sweeps" / "symlora_table1").mkdir(parents=True)
    (tmp_path / "sweeps" / "symlora_table1" / "choices.json").write_text(json.dumps([
        {"task": "rte", "method": "symlora", "rank": 8, "setting": "lr=0.0005,bs=32,r=8,h=11111111"}]))
    res = report(tmp_path, preset="symlora_table1", figures=False, submission=False)["symlora_table1"]
    assert cell(res, "SymLoRA validation", "rte")["value"] == pytest.approx(27.0)
    md = _md(tmp_path, "symlora_table1")
    assert "not shown: lr=0.0005,bs=32,r=8,h=22222222 (1 of 1 seeds, mean 67.0)" in md


# ------------------------------------------------------------------ silent inputs made loud
def test_alpha_outside_0_1_is_refused(tmp_path):
    with pytest.raises(ReportInputError, match=r"alpha=2: expected a significance level between 0 and 1"):
        ReportOptions.from_mapping({"results_dir": tmp_path, "alpha": 2})


def test_test_scores_under_a_preset_without_a_test_column_are_refused(tmp_path, test_scores):
    write_run(tmp_path, "rte", "lora", 0, 0.7)
    with pytest.raises(ReportInputError, match="preset=all has no test column"):
        report(tmp_path, test_scores=str(test_scores))


def test_a_test_score_outside_the_metrics_range_names_file_and_line(tmp_path):
    p = tmp_path / "scores.csv"
    p.write_text("task,method,score\nRTE,symlora,78\nSST-2,symlora,250\n")
    with pytest.raises(ReportInputError, match=r"scores.csv:3: score '250' for SST-2 is outside the metric's range"):
        load_test_scores(p)
    p.write_text("task,method,score\nCoLA,symlora,-0.2\nRTE,symlora,-0.2\n")
    with pytest.raises(ReportInputError, match=r":3: score '-0.2' for RTE"):
        load_test_scores(p)


def test_mnli_test_score_given_once_takes_the_pooled_n(tmp_path):
    p = tmp_path / "scores.csv"
    p.write_text("task,method,score\nmnli,symlora,86\n")
    res = report(tmp_path, preset="symlora_table1", test_scores=str(p), figures=False)["symlora_table1"]
    t = cell(res, "SymLoRA test", "mnli", "test")
    assert t["test_n"] == 9796 + 9847 and round(t["half_width"], 1) == 0.5  # the paper's ± 0.5
    p.write_text("task,method,score\nmnli,symlora,86\nMNLI-m,symlora,86\nMNLI-mm,symlora,85\n")
    res = report(tmp_path, preset="symlora_table1", test_scores=str(p), figures=False)["symlora_table1"]
    assert cell(res, "SymLoRA test", "mnli", "test")["test_n"] == 9796
    assert cell(res, "SymLoRA test", "mnli_mm", "test")["test_n"] == 9847
    # the SymLoRA paper's printed test ± are stored and shown
    disp = res.display.set_index("Task")
    assert disp.loc["QNLI", "SymLoRA test: paper"] == "92.0 ± 0.7" and disp.loc["RTE", "SymLoRA test: paper"] == "78.0 ± 1.5"


def test_a_truncated_choices_json_is_an_error_naming_it(tmp_path):
    write_run(tmp_path, "rte", "lora", 0, 0.7)
    (tmp_path / "sweeps" / "smoke").mkdir(parents=True)
    (tmp_path / "sweeps" / "smoke" / "choices.json").write_text('[{"task": "rte", "meth')
    with pytest.raises(ReportInputError, match=r"sweeps/smoke/choices.json: unreadable"):
        report(tmp_path)
    assert report(tmp_path, setting="best_mean", figures=False)["all"] is not None


def test_a_corrupt_metrics_json_is_named_and_its_precision_not_reported(tmp_path):
    write_run(tmp_path, "rte", "lora", 0, 0.70, precision="fp32", grid="symlora_table1", engine="fused")
    bad = write_run(tmp_path, "rte", "lora", 1, 0.72, precision="fp32", grid="symlora_table1")
    (bad / "config.yaml").write_text(json.dumps({**json.loads((bad / "config.yaml").read_text()), "precision": "bf16"}))
    (bad / "metrics.json").write_text('{"status": "done", "ta')
    msgs: list[str] = []
    res = run_report(ReportOptions(results_dir=tmp_path, preset="symlora_table1", figures=False), echo=msgs.append)
    c = cell(res["symlora_table1"], "LoRA validation", "rte")
    assert c["n_label"] == "1 of 2, 1 unreadable" and c["precision"] == "fp32" and c["engine"] == "fused"
    md = _md(tmp_path, "symlora_table1")
    assert f"{bad / 'metrics.json'}: unreadable" in md and "Precision (of the runs with a score): fp32." in md
    assert "bf16" not in md and any(str(bad / "metrics.json") in m for m in msgs)
    runs = (tmp_path / "tables" / "runs.csv").read_text()
    assert "engine" in runs.splitlines()[0] and "fused" in runs and "—" in runs


def test_an_unreadable_config_yaml_is_one_line_naming_it(tmp_path):
    d = tmp_path / "runs" / "rte" / "lora" / "x" / "seed=0"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("task: [unclosed\n")
    out = subprocess.run([sys.executable, str(REPO / "report.py"), f"results_dir={tmp_path}", "figures=false"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"unreadable run, counted without a score: {d / 'config.yaml'}: unreadable" in out.stdout
    assert "row" not in out.stderr


# ------------------------------------------------------------------ report.py as a user types it
def test_grid_option_and_a_grid_preset_as_typed(tmp_path):
    for s, v in enumerate((0.60, 0.62)):
        write_run(tmp_path, "mnli", "lora", s, v, experiment="quickstart", grid="smoke")
    write_run(tmp_path, "mnli", "lora", 0, 0.99, experiment="symlora_paper", h="99999999")  # another protocol
    (tmp_path / "sweeps" / "smoke").mkdir(parents=True)
    (tmp_path / "sweeps" / "smoke" / "choices.json").write_text("[]")
    res = report(tmp_path, preset="smoke", figures=False)["smoke"]
    assert cell(res, "lora (r=8)", "mnli")["value"] == pytest.approx(61.0)
    assert res.left_out == {"experiment=symlora_paper, grid=null": 1}
    out = subprocess.run([sys.executable, str(REPO / "report.py"), f"results_dir={tmp_path}", "grid=smoke",
                          "preset=smoke", "figures=false"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Grid smoke" in out.stdout and "61.0" in out.stdout


def test_help_says_a_word_on_every_option():
    import yaml

    out = subprocess.run([sys.executable, str(REPO / "report.py"), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    options = [k for k in yaml.safe_load((REPO / "reporting" / "report.yaml").read_text()) if k not in ("defaults", "hydra")]
    assert set(options) == {f.name for f in __import__("dataclasses").fields(ReportOptions)}
    lines = out.stdout.splitlines()
    for key in options:
        line = next((ln for ln in lines if ln.strip().startswith(key + " ")), None)
        assert line is not None and len(line.split()) >= 3, key  # the key, then words on it


# ------------------------------------------------------------------ one rule for a run's protocol
def test_the_protocol_is_part_of_a_runs_identity():
    from rundir import config_hash
    from sweeping.identity import Composer

    composer = Composer()
    paper = composer.config(["experiment=symlora_paper", "task=rte", "adapter=lora"], seed=0)
    by_hand = composer.config(["task=rte", "adapter=lora"], seed=0)
    for key, value in paper.items():  # the paper's every setting, typed by hand
        if key not in ("experiment", "hydra"):
            by_hand[key] = value
    assert by_hand.experiment is None and config_hash(paper) != config_hash(by_hand)
    by_hand.experiment = "symlora_paper"
    assert config_hash(paper) == config_hash(by_hand)
    launched = composer.config(["experiment=symlora_paper", "task=rte", "adapter=lora", "grid_name=other"], seed=0)
    assert config_hash(launched) == config_hash(paper)  # the grid that launched it is not part of it


def test_a_grid_names_its_protocol_once():
    import yaml

    from sweeping.grid import GridError, load_grid

    for path in sorted((REPO / "configs" / "grid").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        assert data["name"] == path.stem and data.get("experiment"), path.name
        grid = load_grid(data)
        assert grid.overrides[0] == f"experiment={data['experiment']}" and grid.experiment == grid_experiment(path.stem)
        assert not any(o.startswith("experiment=") for o in grid.overrides[1:])
    with pytest.raises(GridError, match="the grid's protocol is its experiment key"):
        load_grid({"name": "x", "tasks": ["rte"], "methods": ["lora"], "seeds": [0],
                   "overrides": ["experiment=quickstart"]})
    assert all(p.grid == p.name for p in PRESETS.values())


def test_delora_table1_has_the_papers_rows_its_rank_line_and_mnli_overall(tmp_path):
    m, mm = [0.850, 0.860, 0.855], [0.840, 0.845, 0.850]
    for s in range(3):
        write_run(tmp_path, "mnli", "delora", s, m[s], mismatched=mm[s], rank=64, experiment="delora_report",
                  grid="delora_table1")
    res = report(tmp_path, preset="delora_table1", figures=False)["delora_table1"]
    c = cell(res, "DeLoRA (rank as published)", "mnli_all")
    overall = [(9815 * a + 9832 * b) / (9815 + 9832) for a, b in zip(m, mm)]  # both sets, by hand
    assert c["value"] == pytest.approx(100 * np.mean(overall)) and c["published"] == pytest.approx(84.6)
    assert c["metric"] == "accuracy_overall"
    disp = res.display
    assert {"Adapter (0.3M)", "Adapter (0.9M)"} <= set(disp["Method"])
    adapter = disp.index[disp["Method"] == "Adapter (0.3M)"][0]
    assert disp.loc[adapter + 2, "RTE"] == "71.5 ± 2.7" and disp.loc[adapter + 2, "Trainable"] == "0.3M"
    delora = disp.index[disp["Method"] == "DeLoRA (rank as published)"][0]
    rank_line = disp.loc[delora + 2]
    assert rank_line[""] == "rank" and rank_line["CoLA"] == "64" and rank_line["SST-2"] == "32"
    assert "MNLI" in disp.columns and "overall accuracy" in (tmp_path / "tables" / "delora_table1.tex").read_text()
