"""report.py / reporting/: CI arithmetic, presets on a synthetic results tree, Welch, figures, CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from scipy import stats

from reporting import statistics as st
from reporting.collect import collect_runs, identify_variant
from reporting.runner import run_report

REPO = Path(__file__).resolve().parent.parent
METRIC = {"rte": "accuracy", "mrpc": "accuracy", "cola": "matthews", "stsb": "pearson", "sst2": "accuracy",
          "mnli": "accuracy_matched", "qnli": "accuracy", "qqp": "accuracy"}


# ------------------------------------------------------------------ CI arithmetic, by hand
SCORES = [0.80, 0.82, 0.84, 0.86, 0.88]


def test_sd_normal_and_t_half_widths_by_hand():
    mean = sum(SCORES) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in SCORES) / 4)  # ddof = 1
    assert sd == pytest.approx(0.0316228, abs=1e-7)
    assert st.sample_sd(SCORES) == pytest.approx(sd, rel=1e-12)
    assert st.normal_half_width(SCORES) == pytest.approx(1.96 * 0.0316228 / math.sqrt(5), abs=1e-7)
    assert st.t_half_width(SCORES) == pytest.approx(2.776445 * 0.0316228 / math.sqrt(5), abs=1e-6)
    s = st.summarize(SCORES, ci="t")
    assert (s["n"], s["mean"], s["median"]) == (5, pytest.approx(0.84), pytest.approx(0.84))
    assert s["ci_low"] == pytest.approx(0.84 - 2.776445 * 0.0316228 / math.sqrt(5), abs=1e-6)


def test_bootstrap_is_seeded_and_brackets_mean():
    a = st.summarize(SCORES, ci="bootstrap", boot_seed=3)
    b = st.summarize(SCORES, ci="bootstrap", boot_seed=3)
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])
    assert 0.80 <= a["ci_low"] < 0.84 < a["ci_high"] <= 0.88


def test_bernoulli_half_width_and_dash_for_correlations():
    assert st.bernoulli_half_width(0.9, 1821) == pytest.approx(1.96 * math.sqrt(0.9 * 0.1 / 1821), rel=1e-12)
    assert st.bernoulli_half_width(0.9, 1821) == pytest.approx(0.0137791, abs=1e-7)
    assert st.test_half_width("sst2", 0.9) == pytest.approx(0.0137791, abs=1e-7)
    assert st.test_half_width("rte", 0.78) == pytest.approx(1.96 * math.sqrt(0.78 * 0.22 / 3000), rel=1e-12)
    assert st.test_half_width("cola", 0.6) is None
    assert st.test_half_width("stsb", 0.88) is None


def test_welch_equals_scipy_and_decides_at_005():
    a, b = [0.80, 0.82, 0.84, 0.86, 0.88], [0.70, 0.72, 0.71, 0.73, 0.69]
    ref = stats.ttest_ind(a, b, equal_var=False)
    w = st.welch(a, b)
    assert w["t"] == pytest.approx(ref.statistic) and w["p"] == pytest.approx(ref.pvalue)
    assert w["decision"] == "different" and "Welch" in w["test"]
    c = [0.81, 0.85, 0.83, 0.87, 0.84]
    ref2 = stats.ttest_ind(a, c, equal_var=False)
    assert ref2.pvalue >= 0.05 and st.welch(a, c)["decision"] == "tied"
    assert st.intervals_overlap(0.1, 0.3, 0.25, 0.4) and not st.intervals_overlap(0.1, 0.2, 0.25, 0.4)


def test_lora_of_lora_rule():
    assert identify_variant("lora_of_lora") == "delora_on_mnli_lora"
    assert identify_variant("lora_head_only") == "head_only_on_mnli_lora"
    assert identify_variant("delora", None, "results/runs/mnli/delora/s/seed=0") == "delora"
    assert identify_variant("head_only") == "head_only"
    assert identify_variant("lora", None, "runs/mnli/lora/x/seed=0") == "lora"


# ------------------------------------------------------------------ a synthetic results tree
def write_run(root: Path, task, method, seed, score, *, lr=5e-4, bs=32, rank=8, h="1a2b3c4d", status="done",
              init_from=None, experiment="test", trainable=147672, last=None, norms=False, preds=(),
              finished=True, frozen_init=None):
    setting = f"lr={lr},bs={bs},r={rank},h={h}"
    d = root / "runs" / task / method / setting / f"seed={seed}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(f"task: {task}\nmethod: {method}\nseed: {seed}\n")
    if not finished:
        return d
    metric = METRIC[task]
    hp = {"lr": lr, "batch_size": bs, "epochs": 3, "rank": rank, "alpha": rank, "max_seq_len": 128,
          "weight_decay": 0.1, "warmup_ratio": 0.06, "init_from": init_from}
    if frozen_init:
        hp["frozen_init"] = frozen_init
    m = {"status": status, "reason": None if status == "done" else "nan loss", "task": task, "method": method,
         "seed": seed, "setting": setting, "model": "roberta-base", "experiment": experiment,
         "hyperparameters": hp, "trainable": {"adapter": trainable, "with_head": trainable + 592130},
         "main_metric": metric,
         "best_epoch": 2 if status == "done" else None, "best": {metric: score} if status == "done" else {},
         "last_epoch": 3 if status == "done" else None,
         "last": {metric: score - 0.01 if last is None else last} if status == "done" else {},
         "train_examples": 100, "time_s": 1.0, "examples_per_s": 100.0, "versions": {}, "device": "cpu"}
    (d / "metrics.json").write_text(json.dumps(m))
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


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    for s, v in enumerate(RTE_SYM):
        write_run(root, "rte", "symlora", s, v, norms=True, preds=("RTE.tsv",))
    write_run(root, "rte", "symlora", 4, None, status="failed")
    # a worse setting: best-mean selection must not pick it
    for s in range(5):
        write_run(root, "rte", "symlora", s, 0.60, lr=1e-4, h="deadbeef")
    for s, v in enumerate(MRPC_SYM):
        write_run(root, "mrpc", "symlora", s, v, norms=True, preds=("MRPC.tsv",))
    for s, v in enumerate(COLA_SYM):
        write_run(root, "cola", "symlora", s, v, norms=True)
    for s, v in enumerate(RTE_LORA):
        write_run(root, "rte", "lora", s, v, trainable=294912)
    for s, v in enumerate(MRPC_LORA[:4]):
        write_run(root, "mrpc", "lora", s, v, trainable=294912)
    write_run(root, "mrpc", "lora", 4, None, trainable=294912, finished=False)  # missing/unfinished
    # the sweep chose the lower-lr LoRA setting on cola even though the other is better
    for s in range(3):
        write_run(root, "cola", "lora", s, 0.55 + s * 0.01, lr=4e-4, h="cccccccc", trainable=294912)
        write_run(root, "cola", "lora", s, 0.65, lr=5e-4, h="dddddddd", trainable=294912)
    (root / "sweeps" / "grid1").mkdir(parents=True)
    (root / "sweeps" / "grid1" / "choices.json").write_text(json.dumps([
        {"task": "cola", "method": "lora", "rank": 8, "setting": "lr=0.0004,bs=32,r=8,h=cccccccc",
         "lr": 4e-4, "batch_size": 32, "score_mean": 0.56, "n_seeds": 3}]))
    # DeLoRA ranks
    for r, base in ((16, 0.47), (32, 0.54), (64, 0.62)):
        for s in range(3):
            write_run(root, "cola", "delora", s, base + 0.01 * s, rank=r, trainable=24 * r * r)
    # LoRA of LoRA (init_from a LoRA MNLI run) and its head-only baseline
    mnli_lora = str(root / "runs/mnli/lora/lr=0.0005,bs=16,r=8,h=00000000/seed=0")
    for s in range(3):
        write_run(root, "mrpc", "lora_of_lora", s, 0.77 + 0.01 * s, init_from=mnli_lora, trainable=1536, h="eeeeeeee")
        write_run(root, "mrpc", "lora_head_only", s, 0.71, init_from=mnli_lora, trainable=0, h="ffffffff")
    # B-only / A-only
    for s in range(3):
        write_run(root, "rte", "b_only", s, 0.75 + 0.01 * s, trainable=147456, frozen_init="orthogonal")
        write_run(root, "rte", "a_only", s, 0.70, trainable=147456)
    return root


@pytest.fixture(scope="module")
def test_scores(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("scores") / "test.csv"
    p.write_text("task,method,score\nRTE,symlora,78.0\nCoLA,symlora,0.60\nMRPC,symlora,0.88\n")
    return p


@pytest.fixture(scope="module")
def reports(tree, test_scores):
    out = {}
    for preset in ("symlora_table1", "delora_table1", "delora_table2", "delora_table3", "asymmetry",
                   "lora_table2", "all"):
        out[preset] = run_report(tree, preset=preset, test_scores=str(test_scores), echo=lambda *_: None)[preset]
    return out


def cell(res, row, task, split="validation"):
    sub = res.long[(res.long["row"] == row) & (res.long["task"] == task) & (res.long["split"] == split)]
    assert len(sub) == 1, (row, task, res.long[["row", "task"]])
    return sub.iloc[0]


def test_collect_counts_failed_and_missing(tree):
    runs = collect_runs(tree)
    assert {"task", "method", "rank", "lr", "batch_size", "seed", "status", "best_score", "last_score",
            "trainable_adapter", "trainable_with_head"} <= set(runs.columns)
    assert (runs["status"] == "failed").sum() == 1
    assert (runs["status"] == "missing").sum() == 1
    missing = runs[runs["status"] == "missing"].iloc[0]
    assert (missing["task"], missing["method"], missing["rank"], missing["seed"]) == ("mrpc", "lora", 8, 4)
    assert set(runs[runs["method"] == "lora_of_lora"]["variant"]) == {"delora_on_mnli_lora"}


def test_symlora_table1(reports, tree):
    res = reports["symlora_table1"]
    rte = cell(res, "SymLoRA validation", "rte")
    assert rte["n_label"] == "4 of 5" and rte["n_failed"] == 1
    assert rte["setting"] == "lr=0.0005,bs=32,r=8,h=1a2b3c4d"        # best mean, not the 0.60 setting
    assert rte["value"] == pytest.approx(83.0)
    assert rte["half_width"] == pytest.approx(100 * 1.96 * st.sample_sd(RTE_SYM) / 2)  # normal (paper)
    assert rte["published"] == 85 and rte["diff"] == pytest.approx(-2.0)
    mrpc_lora = cell(res, "LoRA validation", "mrpc")
    assert mrpc_lora["n_label"] == "4 of 5" and mrpc_lora["n_missing"] == 1
    t_rte = cell(res, "SymLoRA test", "rte", "test")
    assert t_rte["value"] == pytest.approx(78.0)
    assert t_rte["half_width"] == pytest.approx(100 * 1.96 * math.sqrt(0.78 * 0.22 / 3000))
    assert math.isnan(cell(res, "SymLoRA test", "cola", "test")["half_width"])
    disp = res.display
    assert list(disp["Task"]) == ["CoLA", "QNLI", "SST-2", "MNLI", "QQP", "RTE", "MRPC", "STS-B"]
    assert {"SymLoRA validation: ours", "SymLoRA validation: n", "SymLoRA validation: paper",
            "SymLoRA validation: Δ", "SymLoRA test: ours", "LoRA validation: ours"} <= set(disp.columns)
    row = disp[disp["Task"] == "RTE"].iloc[0]
    assert row["SymLoRA validation: n"] == "4 of 5" and row["SymLoRA validation: ours"].startswith("83.0 ± ")
    assert row["SymLoRA test: ours"] == "78.0 ± 1.5"
    assert disp[disp["Task"] == "CoLA"].iloc[0]["SymLoRA test: ours"] == "60.0 ± –"
    # comparison: Welch as scipy, decided at 0.05
    c = res.compare.set_index("task")
    ref = stats.ttest_ind(RTE_SYM, RTE_LORA, equal_var=False)
    assert c.loc["rte", "p"] == pytest.approx(ref.pvalue) and c.loc["rte", "welch"] == "different"
    ref_m = stats.ttest_ind(MRPC_SYM, MRPC_LORA[:4], equal_var=False)
    assert c.loc["mrpc", "welch"] == ("tied" if ref_m.pvalue >= 0.05 else "different")
    for ext in ("md", "csv", "tex"):
        assert (tree / "tables" / f"symlora_table1.{ext}").stat().st_size > 100
    assert "\\toprule" in (tree / "tables" / "symlora_table1.tex").read_text()
    assert (tree / "tables" / "symlora_table1_compare.md").exists()


def test_figures_are_valid_png_and_pdf(reports, tree):
    for stem in ("symlora_table1_bars", "symlora_table1_layer_norms_symlora"):
        png, pdf = tree / "figures" / f"{stem}.png", tree / "figures" / f"{stem}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1024
        assert pdf.read_bytes()[:4] == b"%PDF" and pdf.stat().st_size > 1024


def test_submission_zip_of_partial_runs_is_refused_unless_asked_for(reports, tree, tmp_path):
    # the runs predicted 1 row of RTE and MRPC, no other file: the GLUE server would reject the zip
    z = tree / "submission" / "symlora.zip"
    assert not z.exists()
    msgs: list[str] = []
    run_report(tree, preset="symlora_table1", echo=msgs.append, figures=False)
    refusal = next(m for m in msgs if m.startswith(f"submission: {z} not written"))
    assert "RTE.tsv: holds 1 row; the GLUE server expects 3,000 rows" in refusal
    assert "AX.tsv: missing; the GLUE server expects 1,104 rows" in refusal
    assert sum(line.startswith("  ") and ".tsv: " in line for line in refusal.splitlines()) == 11
    assert not z.exists()
    msgs.clear()
    run_report(tree, preset="symlora_table1", echo=msgs.append, figures=False, submission_partial=True)
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == ["MRPC.tsv", "RTE.tsv"]
    assert any(m.startswith(f"submission: {z} (2 files), PARTIAL") and "RTE.tsv: holds 1 row" in m
               for m in msgs)


def test_sweep_choice_wins_over_best_mean(reports):
    c = cell(reports["lora_table2"], "LoRA (r=8)", "cola")
    assert c["setting"] == "lr=0.0004,bs=32,r=8,h=cccccccc" and c["setting_source"] == "sweep:grid1"
    assert c["value"] == pytest.approx(56.0)  # median of 0.55, 0.56, 0.57 (LoRA paper: median)
    assert c["center"] == "median"


def test_delora_tables(reports):
    t2 = reports["delora_table2"]
    assert list(dict.fromkeys(t2.long["row"])) == ["DeLoRA r=16", "DeLoRA r=32", "DeLoRA r=64"]
    assert cell(t2, "DeLoRA r=64", "cola")["value"] == pytest.approx(63.0)
    assert cell(t2, "DeLoRA r=16", "cola")["published"] == pytest.approx(47.2)
    assert cell(t2, "DeLoRA r=32", "cola")["trainable_adapter"] == 24 * 32 * 32
    t1 = reports["delora_table1"]
    d = cell(t1, "DeLoRA (rank as published)", "cola")
    assert d["rank"] == 64 and d["value"] == pytest.approx(63.0) and d["published"] == pytest.approx(62.1)
    assert "Full FT" not in set(t1.long["row"])  # optional rows without runs are dropped
    assert "Trainable" in t1.display.columns
    t3 = reports["delora_table3"]
    lol = cell(t3, "LoRA of LoRA", "mrpc")
    assert lol["value"] == pytest.approx(78.0) and lol["published"] == pytest.approx(77.5)
    assert cell(t3, "Head only on MNLI LoRA", "mrpc")["value"] == pytest.approx(71.0)
    assert list(t3.display["Task"]) == ["MRPC", "RTE", "STS-B"]


def test_asymmetry_and_summary(reports):
    a = reports["asymmetry"]
    assert cell(a, "B-only orthogonal (r=8)", "rte")["value"] == pytest.approx(76.0)
    assert cell(a, "A-only orthogonal (r=8)", "rte")["value"] == pytest.approx(70.0)  # unrecorded init -> orthogonal
    assert cell(a, "B-only orthogonal (r=8)", "average")["published"] == pytest.approx(87.4)
    s = reports["all"]
    assert {"symlora (r=8)", "lora (r=8)", "delora (r=16)", "delora_on_mnli_lora (r=8)"} <= set(s.long["row"])


def test_empty_preset_message(tmp_path):
    msgs = []
    run_report(tmp_path, preset="delora_table3", echo=msgs.append, figures=False)
    assert any("No runs match preset 'delora_table3'" in m and "mrpc" in m for m in msgs)


def test_cli_end_to_end(tree, tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "report.py"), f"results_dir={tree}", "ci=t",
                          "selection=last_epoch"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "| Method" in out.stdout and "symlora (r=8)" in out.stdout and "4 of 5" in out.stdout
    assert (tree / "tables" / "all.md").exists() and not (tmp_path / "outputs").exists()
