"""sweep.py end to end on the tiny model and the sample data (the smoke grid: MNLI and RTE x LoRA and
SymLoRA x 2 learning rates x 2 seeds, search on seed 0; 12 runs of one epoch at length 32)."""
import json
import os
from pathlib import Path

import pytest
import torch

from sweeping.cli import run_sweep
from training import run as training_run
from rundir import read_run, write_json_atomic


def read_metrics(directory):
    return read_run(directory).metrics or None

SMOKE = ["grid=smoke"]
REAL_RUN_PACK = training_run.run_pack


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Small CPU runs: one thread each is faster than several fighting over the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


class Stopped(BaseException):
    """Like Ctrl-C (KeyboardInterrupt, which pytest keeps for itself): not an Exception, so no
    launcher catches it and the sweep stops."""


def counting(monkeypatch, stop_after=None, packs=None):
    """Wrap training.run.run_pack: count the runs it trains (and the pack sizes, into ``packs``);
    stop the sweep (raise ``Stopped``) when asked to start run number ``stop_after + 1``."""
    real, calls = REAL_RUN_PACK, []

    def run_pack(jobs):
        for cfg, _ in jobs:
            if stop_after is not None and len(calls) == stop_after:
                raise Stopped
            calls.append(cfg.task.name)
        if packs is not None:
            packs.append(len(jobs))
        return real(jobs)

    monkeypatch.setattr(training_run, "run_pack", run_pack)
    return calls


def finished_runs(results: Path) -> list[Path]:
    return sorted(p.parent for p in (results / "runs").glob("**/metrics.json"))


def check_choices(results: Path) -> dict:
    """choices.json names, per (task, method), the setting with the best mean validation score of its
    search runs, recomputed here from their metrics.json (ties: more seeds, then the grid's order)."""
    sweep = results / "sweeps" / "smoke"
    search = json.loads((sweep / "search.json").read_text())
    choices = {(c["task"], c["method"]): c for c in json.loads((sweep / "choices.json").read_text())}
    assert len(choices) == 4
    for (task, method), choice in choices.items():
        by_setting: dict[str, list[float]] = {}
        for entry in search:
            if (entry["task"], entry["method"]) == (task, method):
                m = read_metrics(Path(entry["run_dir"]))
                by_setting.setdefault(m["setting"], []).append(m["best"][m["main_metric"]])
        assert len(by_setting) == 2
        order = list(by_setting)
        best = max(order, key=lambda s: (sum(by_setting[s]) / len(by_setting[s]), len(by_setting[s]),
                                         -order.index(s)))
        assert choice["setting"] == best
        assert choice["score_mean"] == pytest.approx(sum(by_setting[best]) / len(by_setting[best]))
        assert choice["n_seeds"] == 1 and choice["rank"] == 8
    return choices


def check_mnli_dependency(results: Path, choices: dict) -> None:
    """Every RTE run started from, and after, the MNLI run of its method and seed at MNLI's choice."""
    rte_runs = [d for d in finished_runs(results) if d.parts[-4] == "rte"]
    assert len(rte_runs) == 6
    for d in rte_runs:
        metrics = read_metrics(d)
        choice = choices[("mnli", metrics["method"])]
        mnli = results / "runs" / "mnli" / metrics["method"] / choice["setting"] / f"seed={metrics['seed']}"
        assert metrics["hyperparameters"]["init_from"] == str(mnli)
        assert read_metrics(mnli)["status"] == "done"
        assert (mnli / "metrics.json").stat().st_mtime <= (d / "config.yaml").stat().st_mtime
    # the seeds of one RTE setting share its name (one setting, two seeds)
    replicate = json.loads((results / "sweeps" / "smoke" / "replicate.json").read_text())
    for method in ("lora", "symlora"):
        settings = {e["setting"] for e in replicate if (e["task"], e["method"]) == ("rte", method)}
        assert len(settings) == 1


@pytest.mark.slow
def test_smoke_sweep_resumes_chooses_and_orders(tmp_path, monkeypatch):
    results = tmp_path / "results"
    args = [*SMOKE, f"results_dir={results}"]

    # a sweep stopped after 5 runs (as by Ctrl-C) ...
    counting(monkeypatch, stop_after=5)
    with pytest.raises(Stopped):
        run_sweep(args)
    assert len(finished_runs(results)) == 5

    # ... run again: only the 7 missing runs are trained
    calls = counting(monkeypatch)
    summary = run_sweep(args)
    assert len(calls) == 7 and summary["launched"] == 7
    assert summary["counts"] == {"done": 12}
    assert len(finished_runs(results)) == 12
    choices = check_choices(results)
    check_mnli_dependency(results, choices)

    # the same sweep again: nothing to do
    calls = counting(monkeypatch)
    assert run_sweep(args)["launched"] == 0 and calls == []

    # a failed run is retried only with retry_failed=true
    victim = finished_runs(results)[-1]
    metrics = read_metrics(victim)
    write_json_atomic(victim / "metrics.json", {**metrics, "status": "failed", "reason": "test"})
    summary = run_sweep(args)
    assert summary["launched"] == 0 and summary["counts"] == {"done": 11, "failed": 1}
    summary = run_sweep([*args, "retry_failed=true"])
    assert summary["launched"] == 1 and calls == [victim.parts[-4]]
    assert summary["counts"] == {"done": 12} and read_metrics(victim)["status"] == "done"


def test_packed_sweep_equals_the_unpacked_one(tmp_path, monkeypatch):
    """max_pack_size=4: the search runs of a (task, method) differ only in lr and train as one pack;
    dropout on, every run ends with the numbers of the unpacked sweep (max_pack_size=1). engine=fused:
    on a CPU engine=auto would train a pack's runs in turn."""
    args = [*SMOKE, "grid.overrides=['epochs=1','max_seq_len=32','engine=fused']"]
    packs = []
    counting(monkeypatch, packs=packs)
    run_sweep([*args, f"results_dir={tmp_path / 'packed'}", "max_pack_size=4"])
    assert sorted(packs, reverse=True)[:4] == [2, 2, 2, 2] and sum(packs) == 12
    run_sweep([*args, f"results_dir={tmp_path / 'alone'}", "max_pack_size=1"])
    packed, alone = finished_runs(tmp_path / "packed"), finished_runs(tmp_path / "alone")
    assert [p.relative_to(tmp_path / "packed") for p in packed] == [p.relative_to(tmp_path / "alone") for p in alone]
    for p, a in zip(packed, alone):
        mp, ma = read_metrics(p), read_metrics(a)
        assert mp["status"] == ma["status"] == "done"
        for key, value in ma["best"].items():
            assert mp["best"][key] == pytest.approx(value, abs=1e-4), (p, key)


@pytest.mark.slow
def test_smoke_sweep_through_submitit_local(tmp_path):
    """The SLURM code path (hydra-submitit-launcher), with submitit's local executor: jobs pickle,
    run in their own processes and return their metrics."""
    results = tmp_path / "results"
    summary = run_sweep([*SMOKE, f"results_dir={results}", "hydra/launcher=submitit_local", "max_pack_size=1",
                         "hydra.launcher.timeout_min=10"])
    assert summary["launched"] == 12 and summary["counts"] == {"done": 12}
    assert summary["returned"] == 12  # metrics dicts that came back through submitit's pickles
    assert len(list((results / "sweeps" / "smoke" / ".submitit").iterdir())) >= 12
    check_mnli_dependency(results, check_choices(results))


def test_command_line_dry_run(tmp_path):
    """`python sweep.py grid=smoke ... dry_run=true` from a shell, in another working directory."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "sweep.py"), "grid=smoke", f"results_dir={tmp_path}",
                          "dry_run=true", "throughput=100"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sweep smoke: 12 runs (8 search, 4 replication only): 0 done, 4 to do")
    assert "at 100 examples/s per GPU" in out.stdout


@pytest.mark.slow
def test_lora_of_lora_through_joblib(tmp_path):
    """DeLoRA Table 3's shape: a LoRA-of-LoRA grid on RTE alone; the sweep adds the MNLI LoRA run it
    starts from, runs it first, and both go through the joblib launcher (local processes)."""
    results = tmp_path / "results"
    summary = run_sweep([*SMOKE, f"results_dir={results}", "grid.tasks=[rte]", "grid.methods=[lora_of_lora]",
                         "grid.lr=[0.003]", "grid.seeds=[0]", "hydra/launcher=joblib",
                         "hydra.launcher.n_jobs=2"])
    assert summary["launched"] == 2 and summary["counts"] == {"done": 2} and summary["returned"] == 2
    (rte,) = [d for d in finished_runs(results) if d.parts[-4] == "rte"]
    (mnli,) = [d for d in finished_runs(results) if d.parts[-4] == "mnli"]
    assert mnli.parts[-3] == "lora" and rte.parts[-3] == "lora_of_lora"
    assert read_metrics(rte)["hyperparameters"]["init_from"] == str(mnli)


def test_a_crashing_run_is_reported_and_its_dependents_wait(tmp_path, monkeypatch):
    """A run that raises (no metrics.json) is an error: the sweep goes on, the RTE run that would
    start from it stays blocked, and the next sweep tries it again."""
    def crash(jobs):
        raise ValueError("broken data")

    monkeypatch.setattr(training_run, "run_pack", crash)
    args = [*SMOKE, f"results_dir={tmp_path}", "grid.methods=[lora]", "grid.lr=[0.003]", "grid.seeds=[0]"]
    summary = run_sweep(args)
    assert summary["launched"] == 1 and summary["counts"] == {"error": 1, "blocked": 1}
    (mnli,) = [r for r in summary["plan"].unique() if r.state == "error"]
    assert "ValueError: broken data" in mnli.reason
    search = json.loads((tmp_path / "sweeps" / "smoke" / "replicate.json").read_text())
    assert [e["state"] for e in search] == ["error", "blocked"]
    assert run_sweep([*args, "dry_run=true"])["counts"] == {"todo": 1, "blocked": 1}


def test_two_concurrent_sweeps_train_each_run_once(tmp_path):
    """Two `sweep.py` on one results folder: every run trained by one of them (the other waits on the
    run's lock and finds it finished), one epochs.jsonl line per epoch, both end well."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    args = [sys.executable, str(root / "sweep.py"), *SMOKE, f"results_dir={tmp_path}", "grid.methods=[lora]",
            "grid.lr=[0.003]"]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    sweeps = [subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
              for _ in range(2)]
    outputs = [s.communicate(timeout=600) for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], outputs
    for out, err in outputs:  # the sweep's own lines and Hydra's, none stamped [HYDRA]
        assert "sweep smoke finished" in out + err and "[HYDRA]" not in out + err
    assert not [p for p in tmp_path.rglob("*") if p.is_dir() and not any(p.iterdir())]  # no empty folders
    runs = finished_runs(tmp_path)
    assert len(runs) == 4  # mnli, rte × seeds 0, 1
    for run in runs:
        assert [json.loads(x)["epoch"] for x in (run / "epochs.jsonl").read_text().splitlines()] == [1]
        assert read_metrics(run)["grid"] == "smoke" and read_metrics(run)["experiment"] == "quickstart"
