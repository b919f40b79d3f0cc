"""sweep.py's pure parts: grid expansion, run identity, dependencies, stages and selection, the plan,
the estimate and the dry run. No training here (see test_sweep_e2e.py)."""
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweeping import dependencies
from sweeping.estimate import GLUE_SIZES, estimate, run_examples
from sweeping.grid import (SWEEP_KEYS, GridError, Setting, groups, load_grid, merge_overrides,
                           passthrough)
from sweeping.identity import Composer, quote, run_overrides
from sweeping.plan import make_plan
from sweeping.stages import best_setting, write_records
from training.config import CONFIG_DIR, compose
from rundir import run_dir, setting_name, write_json_atomic

GRID_DIR = CONFIG_DIR / "grid"


def grid_node(name, **changes):
    node = OmegaConf.load(GRID_DIR / f"{name}.yaml")
    for key, value in changes.items():
        node[key] = value
    return node


def smoke(tmp_path, **changes):
    grid = load_grid(grid_node("smoke", **changes))
    composer = Composer()
    all_groups, needs = dependencies.resolve(groups(grid, [f"results_dir={tmp_path}"]), composer)
    return grid, composer, all_groups, needs


# -- grid ----------------------------------------------------------------------------------------
def test_grid_expansion():
    grid = load_grid({"name": "g", "tasks": ["rte", "sst2"], "methods": ["lora", "delora"],
                      "ranks": {"lora": [8], "delora": [16, 32]}, "lr": [1e-4, 5e-4], "batch_size": [16, 32],
                      "seeds": [0, 1, 2], "search_seeds": 2})
    assert grid.settings == tuple(Setting(lr, bs) for lr in (1e-4, 5e-4) for bs in (16, 32))
    assert grid.search_seeds == (0, 1)
    gs = groups(grid, ["model=tiny"])
    assert [(g.task, g.method, g.rank) for g in gs] == [
        ("rte", "lora", 8), ("rte", "delora", 16), ("rte", "delora", 32),
        ("sst2", "lora", 8), ("sst2", "delora", 16), ("sst2", "delora", 32)]
    assert gs[1].base == ("model=tiny", "grid_name=g", "task=rte", "adapter=delora", "adapter.rank=16")
    assert all(g.has_search for g in gs)


def test_grid_defaults_and_errors():
    grid = load_grid({"name": "g", "tasks": ["rte"], "methods": ["lora"], "seeds": [0, 1]})
    assert grid.settings == (Setting(None, None),) and grid.search_seeds == (0, 1)
    assert not groups(grid)[0].has_search
    with pytest.raises(GridError, match="search_seeds"):
        load_grid({"name": "g", "tasks": ["rte"], "methods": ["lora"], "seeds": [0], "search_seeds": [3]})
    with pytest.raises(GridError, match="lacks"):
        load_grid({"name": "g", "tasks": ["rte"], "seeds": [0]})
    with pytest.raises(GridError, match="no grid"):
        load_grid(None)


def test_passthrough_overrides():
    args = ["grid=smoke", "grid.seeds=[0,1]", "dry_run=true", "retry_failed=true", "throughput=500",
            "model=tiny", "epochs=1", "+foo=1", "results_dir=/tmp/r"]
    assert passthrough(args) == ["model=tiny", "epochs=1", "+foo=1", "results_dir=/tmp/r"]
    for bad in ("task=rte", "seed=3", "lr=0.1", "adapter=lora", "adapter.rank=4", "batch_size=8"):
        with pytest.raises(GridError, match="grid"):
            passthrough([bad])
    # a later override of the same key replaces the earlier one, in its place
    assert merge_overrides(["experiment=a", "epochs=2"], ["epochs=1", "model=tiny"], ["experiment=b"]) == [
        "experiment=b", "epochs=1", "model=tiny"]


def test_sweep_config_keys_are_the_sweep_keys():
    """Every key sweep.yaml adds to train.yaml is a sweep option, never passed to a run."""
    sweep = OmegaConf.load(CONFIG_DIR / "sweep.yaml")
    own = {k for k in sweep if k not in ("defaults", "hydra")}
    assert own | {"grid"} == set(SWEEP_KEYS)
    assert not own & set(OmegaConf.load(CONFIG_DIR / "train.yaml"))


@pytest.mark.parametrize("path", sorted(GRID_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_grid_file_composes(path, tmp_path):
    """Each grid loads, and each of its groups composes to the method, task and rank it names."""
    grid = load_grid(OmegaConf.load(path))
    assert grid.name == path.stem
    composer = Composer()
    all_groups, needs = dependencies.resolve(groups(grid, [f"results_dir={tmp_path}"]), composer)
    for g in all_groups:
        cfg = composer.config(g.base)
        assert (cfg.task.name, cfg.adapter.name) == (g.task, g.method)
        if g.rank is not None:
            assert cfg.adapter.rank == g.rank
    for key, dep in needs.items():
        assert key[0] in ("mrpc", "rte", "stsb") and dep[0] == "mnli"


# -- identity ------------------------------------------------------------------------------------
@pytest.mark.parametrize("base,lr,bs,seed", [
    (["experiment=quickstart", "task=rte", "adapter=symlora"], 3e-3, None, 1),
    (["experiment=delora_report", "task=cola", "adapter=delora", "adapter.rank=32"], None, 32, 0),
    (["experiment=symlora_paper", "task=qnli", "adapter=lora", "adapter.rank=8"], 1e-4, 16, 4),
])
def test_fast_compose_equals_train_compose(base, lr, bs, seed, tmp_path):
    """Setting lr / batch_size / seed / init_from on the composed group config gives exactly the
    config (and so the run directory) that `python train.py <all overrides>` composes."""
    base = [f"results_dir={tmp_path}", *base]
    init = str(tmp_path / "runs/mnli/lora/lr=0.0005,bs=16,r=8,h=12345678/seed=1")
    for init_from in (None, init):
        fast = Composer().config(base, lr, bs, seed, init_from=init_from)
        full = compose(run_overrides(base, lr, bs, seed, init_from))
        assert fast == full
        assert run_dir(fast) == run_dir(full)
        if init_from:
            assert full.init_from == init_from  # the quoted override reads back verbatim


def test_quote_round_trip():
    assert quote("a,b=c/d'e") == "'a,b=c/d\\'e'"


def test_setting_shared_by_seeds_started_from_their_own_mnli_run(tmp_path):
    """RTE seeds that start from the MNLI run of their own seed share one setting name, and the
    name does not depend on how results_dir is spelt (absolute or relative)."""
    mnli = "runs/mnli/lora/lr=0.0005,bs=16,r=8,h=12345678"
    names = set()
    for seed in (0, 1, 2):
        cfg = compose(["task=rte", f"results_dir={tmp_path}", f"seed={seed}",
                       f"init_from={quote(f'{tmp_path}/{mnli}/seed={seed}')}"])
        names.add(setting_name(cfg))
    assert len(names) == 1
    other = compose(["task=rte", f"results_dir={tmp_path}", "seed=1",
                     f"init_from={quote(f'{tmp_path}/{mnli}/seed=0')}"])  # another seed's MNLI run
    assert setting_name(other) not in names


# -- dependencies --------------------------------------------------------------------------------
def test_dependencies_smoke(tmp_path):
    _, composer, all_groups, needs = smoke(tmp_path)
    assert [(g.task, g.method) for g in all_groups] == [
        ("mnli", "lora"), ("mnli", "symlora"), ("rte", "lora"), ("rte", "symlora")]
    by_key = {g.key: g for g in all_groups}
    assert {by_key[k].method: (by_key[d].task, by_key[d].method) for k, d in needs.items()} == {
        "lora": ("mnli", "lora"), "symlora": ("mnli", "symlora")}


def test_dependencies_lora_of_lora_adds_the_mnli_lora_group(tmp_path):
    grid = load_grid(grid_node("delora_table3"))
    composer = Composer()
    all_groups, needs = dependencies.resolve(groups(grid, [f"results_dir={tmp_path}"]), composer)
    aux = [g for g in all_groups if g.auxiliary]
    assert [(g.task, g.method, g.rank) for g in aux] == [("mnli", "lora", 8)]
    assert all_groups[0] is aux[0]  # planned (and launched) first
    assert len(needs) == 6 and set(needs.values()) == {aux[0].key}
    assert composer.config(aux[0].base).adapter.alpha == 16  # the preset's alpha = 2r, as the LoRA


# -- stages --------------------------------------------------------------------------------------
def test_best_setting():
    assert best_setting([[0.5, 0.7], [0.65, 0.6], [None, None]]) == (1, pytest.approx(0.625), 2)
    assert best_setting([[0.6], [0.6, 0.6]])[0] == 1          # tie: more done seeds
    assert best_setting([[0.6], [0.6]])[0] == 0               # tie: the earlier setting
    assert best_setting([[None], [float("nan")]]) is None


def fake_metrics(directory: Path, score: float | None, status: str = "done"):
    write_json_atomic(directory / "metrics.json", {
        "status": status, "reason": None if status == "done" else "non-finite loss",
        "main_metric": "accuracy", "best": {} if score is None else {"accuracy": score},
        "examples_per_s": 100.0})


def test_plan_stages_choice_and_dependencies(tmp_path):
    """Walk the smoke plan by hand: MNLI search, choice by mean, replication, RTE from the chosen
    MNLI run of the same seed."""
    grid, composer, all_groups, needs = smoke(tmp_path, seeds=[0, 1, 2], search_seeds=2)
    plan = make_plan(all_groups, needs, composer)
    assert plan.counts() == {"todo": 8, "blocked": 8, "pending": 4}
    assert {r.group.task for r in plan.todo()} == {"mnli"}

    # MNLI search: lr 1e-2 wins for lora (mean .75 vs .6), 3e-3 for symlora
    scores = {("lora", 0.003): [0.6, 0.6], ("lora", 0.01): [0.9, 0.6],
              ("symlora", 0.003): [0.7, 0.7], ("symlora", 0.01): [0.1, 0.2]}
    for r in plan.todo():
        fake_metrics(r.directory, scores[(r.group.method, r.cfg.lr)][r.seed])
    plan = make_plan(all_groups, needs, composer)
    chosen = {g.method: c for g, c in plan.choices if g.task == "mnli"}
    assert (chosen["lora"].lr, chosen["lora"].score_mean) == (0.01, pytest.approx(0.75))
    assert (chosen["symlora"].lr, chosen["symlora"].n_seeds) == (0.003, 2)
    todo = plan.todo()
    # MNLI seed 2 of the chosen settings, and RTE's search on seeds 0, 1
    assert sorted((r.group.task, r.stage, r.seed) for r in todo) == sorted(
        [("mnli", "replicate", 2)] * 2 + [("rte", "search", s) for s in (0, 1)] * 4)
    mnli_runs = {(r.group.method, r.setting_index, r.seed): r for r in plan.runs if r.group.task == "mnli"}
    for r in todo:
        if r.group.task == "rte":
            mnli = mnli_runs[(r.group.method, chosen[r.group.method].index, r.seed)]
            assert r.init_from == str(mnli.directory)
            assert f"init_from={quote(str(mnli.directory))}" in r.overrides
    rte_blocked = [r for r in plan.unique() if r.group.task == "rte" and r.state == "pending"]
    assert len(rte_blocked) == 2

    # a failed run is finished: it is not launched again unless retry_failed
    for r in todo:
        fake_metrics(r.directory, 0.5, status="failed" if r.group.task == "mnli" else "done")
    plan = make_plan(all_groups, needs, composer)
    rte_rep = [r for r in plan.unique() if r.group.task == "rte" and r.stage == "replicate"]
    assert [(r.seed, r.state) for r in rte_rep if r.seed == 2] == [(2, "blocked"), (2, "blocked")]
    assert all(r.group.task != "mnli" for r in plan.todo())
    retry = make_plan(all_groups, needs, composer, retry_failed=True)
    again = [r for r in retry.todo() if r.group.task == "mnli"]
    assert len(again) == 2 and all(r.rerun and "rerun=true" in r.overrides for r in again)

    paths = write_records(tmp_path / "sweeps" / grid.name, plan)
    choices = json.loads(paths["choices"].read_text())
    assert {(c["task"], c["method"]) for c in choices} == {("mnli", "lora"), ("mnli", "symlora"),
                                                           ("rte", "lora"), ("rte", "symlora")}
    assert set(choices[0]) >= {"task", "method", "rank", "setting", "lr", "batch_size", "score_mean", "n_seeds"}
    assert choices[0]["rank"] == 8
    search = json.loads(paths["search"].read_text())
    assert len(search) == 16 and {e["stage"] if "stage" in e else "search" for e in search} == {"search"}


def test_plan_adding_seeds_reuses_runs(tmp_path):
    """A run's identity is its configuration: more seeds in the grid leave the done runs done."""
    _, composer, all_groups, needs = smoke(tmp_path, tasks=["sst2"], methods=["lora"], lr=[0.003])
    for r in make_plan(all_groups, needs, composer).todo():
        fake_metrics(r.directory, 0.5)
    assert make_plan(all_groups, needs, composer).counts() == {"done": 2}
    _, composer, all_groups, needs = smoke(tmp_path, tasks=["sst2"], methods=["lora"], lr=[0.003],
                                           seeds=[0, 1, 2, 3])
    assert make_plan(all_groups, needs, composer).counts() == {"done": 2, "todo": 2}


# -- estimate and dry run ------------------------------------------------------------------------
def test_estimate_glue_sizes():
    cfg = compose(["task=rte", "experiment=symlora_paper"])   # 80 epochs of 2,490
    train, val, test = GLUE_SIZES["rte"]
    assert run_examples(cfg) == pytest.approx(80 * train + (80 * val + val + test) / 3)
    est = estimate([cfg, cfg], throughput=900)
    assert est.gpu_hours == pytest.approx(2 * run_examples(cfg) / 900 / 3600)


def test_estimate_sample_sizes():
    cfg = compose(["task=rte", "data=sample", "epochs=2"])
    assert run_examples(cfg) == pytest.approx(2 * 400 + (2 * 100 + 100 + 50) / 3)


def test_dry_run_symlora_table1(tmp_path, capsys):
    """The full SymLoRA Table 1 grid: 8 tasks x 2 methods x (8 settings x 2 search seeds + 3 more
    seeds) = 304 runs, none done; prints the run count and the GPU-hours."""
    from sweeping.cli import run_sweep

    summary = run_sweep(["grid=symlora_table1", f"results_dir={tmp_path}", "dry_run=true"])
    out = capsys.readouterr().out
    print(out.splitlines()[0], out.splitlines()[-1], sep="\n")
    assert summary["counts"] == {"todo": 5 * 2 * 16, "blocked": 3 * 2 * 16, "pending": 16 * 3}
    assert out.startswith("sweep symlora_table1: 304 runs (256 search, 48 replication only)")
    assert "estimate: 304 runs to do" in out and "GPU-hours at 900 examples/s" in out
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "runs").exists()  # ran nothing
    # ~38 LoRA-paper passes over GLUE (28.8 M training examples each, performance.md) at 900 ex/s
    examples = float(out.split("estimate: 304 runs to do, ")[1].split(" examples")[0].replace(",", ""))
    hours = float(out.split("examples, ")[1].split(" GPU-hours")[0].replace(",", ""))
    assert examples > 1.0e9 and examples < 1.2e9 and hours == pytest.approx(examples / 900 / 3600, abs=0.01)


def test_sweep_syntax_is_refused(tmp_path):
    """Several values belong in the grid; Hydra refuses `a=1,2` outside --multirun."""
    from hydra.errors import ConfigCompositionException

    from sweeping.cli import run_sweep

    with pytest.raises((GridError, ConfigCompositionException), match="grid|Ambiguous"):
        run_sweep(["grid=smoke", f"results_dir={tmp_path}", "dry_run=true", "epochs=1,2"])
    with pytest.raises(GridError, match=r"put several values there, e.g. grid.lr=\["):  # ours, before Hydra's
        run_sweep(["grid=smoke", f"results_dir={tmp_path}", "dry_run=true", "epochs=1,2"])


@pytest.mark.parametrize("args,message", [(["epochs=1,2", "grid=smoke"], "put several values there"),
                                          (["dry_run=true"], "no grid chosen")])
def test_command_line_errors_are_a_message_not_a_traceback(tmp_path, args, message):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "sweep.py"), *args,
                          f"results_dir={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


# -- the GPU pool of parallel local launchers ----------------------------------------------------
def test_gpu_pool_gives_each_job_its_own_gpu(tmp_path):
    from sweeping.job import claim_gpu, gpu_count, gpu_pool

    assert gpu_pool(2) == [0, 1] and gpu_pool([0, 2]) == [0, 2] and gpu_pool("1,3") == [1, 3]
    assert gpu_pool(None) == [] and gpu_count(4) == 4 and gpu_count(None) == 1
    with claim_gpu([0, 1], tmp_path) as first, claim_gpu([0, 1], tmp_path) as second:
        assert {first, second} == {0, 1}
    with claim_gpu([0, 1], tmp_path) as again:  # released
        assert again == 0


@pytest.mark.parametrize("launcher,expect", [
    (["hydra/launcher=local_gpus", "gpus=[0,2]"], lambda l: l.joblib["n_jobs"] == 2 and l.task_function.pool == [0, 2]),
    (["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
     lambda l: l.params["partition"] == "gpu" and l.params["gpus_per_node"] == 1 and l.params["timeout_min"] == 720),
    (["hydra/launcher=submitit_slurm"], lambda l: type(l).__name__ == "SlurmLauncher"),
    ([], lambda l: type(l).__name__ == "BasicLauncher"),
])
def test_launchers_from_the_command_line(launcher, expect, tmp_path):
    """Hydra's launcher plugins, chosen by hydra/launcher, get train.yaml as the jobs' primary config."""
    from sweeping.cli import sweep_config
    from sweeping.launch import WaveLauncher

    with sweep_config(["grid=smoke", f"results_dir={tmp_path}", *launcher]) as cfg:
        made = WaveLauncher(cfg).launcher
    assert expect(made)
    assert made.config.hydra.job.config_name == "train"
    assert str(made.config.hydra.sweep.dir) == f"{tmp_path}/sweeps/smoke"


def test_the_sweep_uses_no_private_hydra_api_and_leaves_pythonpath_alone():
    """Launchers through Hydra's public plugin interface; jobs import the installed package."""
    import sweeping

    for source in Path(sweeping.__file__).parent.glob("*.py"):
        text = source.read_text()
        assert "hydra._internal" not in text and "PYTHONPATH" not in text, source.name


def test_progress_lines(tmp_path, caplog):
    """Off a terminal: one plain log line per finished run, with done / total and failures."""
    import io
    import logging
    from types import SimpleNamespace

    from sweeping.progress import Progress

    run = lambda key: SimpleNamespace(key=key, directory=None, label=lambda: f"rte/lora/seed={key}")  # noqa: E731
    progress = Progress(3, stream=io.StringIO())
    with caplog.at_level(logging.INFO, logger="sweep"):
        progress.finished(run(0), "done", {"main_metric": "accuracy", "best": {"accuracy": 0.75}})
        progress.finished(run(1), "failed", reason="non-finite training loss\nmore")
        progress.finished(run(1), "failed")  # counted once
    assert [r.getMessage() for r in caplog.records] == [
        "[1/3] rte/lora/seed=0: done accuracy 0.7500",
        "[2/3] rte/lora/seed=1: failed (non-finite training loss) (1 failed)"]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = Progress(2, stream=stream)
    bar.finished(run(0), "done")
    bar.close()
    assert "[1/2] rte/lora/seed=0: done" in stream.getvalue() and bar.bar is not None


# -- how a job enters training -------------------------------------------------------------------
def test_a_sweep_job_enters_training_as_train_py_does(tmp_path, monkeypatch, caplog):
    """Each job goes through training.entry.train, as train.py does: its run directory records the
    sweep's command line with the job's overrides (commands.jsonl) and the run's log (train.log). The
    training itself is replaced by a stand-in that makes the run directory and logs a line."""
    import logging
    import sys

    from sweeping.cli import run_sweep
    from training import run as training_run
    from training.config import resolved

    def stand_in(jobs):
        for cfg, _ in jobs:
            directory = run_dir(resolved(cfg))
            directory.mkdir(parents=True)
            logging.getLogger("training.run").info("%s: trained by the stand-in", directory)
        return [{"status": "done"} for _ in jobs]

    monkeypatch.setattr(training_run, "run_pack", stand_in)
    caplog.set_level(logging.INFO)
    run_sweep(["grid=smoke", f"results_dir={tmp_path}", "grid.tasks=[mnli]", "grid.methods=[lora]",
               "grid.lr=[0.003]", "grid.seeds=[0]"])
    [directory] = [p.parent for p in tmp_path.glob("runs/**/commands.jsonl")]
    [command] = [json.loads(line) for line in (directory / "commands.jsonl").read_text().splitlines()]
    assert command["argv"] == [sys.executable, *sys.argv]  # the sweep's (here: pytest's) command line
    assert "task=mnli" in command["overrides"] and "adapter=lora" in command["overrides"]
    assert f"{directory}: trained by the stand-in" in (directory / "train.log").read_text()


def test_runs_of_a_model_with_head_extras_get_a_job_each(tmp_path):
    """Training runs a DistilBERT's pack one run after another (its head's pre_classifier is not
    packed): the sweep, reading model_type from the folder's config.json, gives each run its own job."""
    from types import SimpleNamespace

    from sweeping.packing import form_packs, head_extras

    folder = tmp_path / "distil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "distilbert"}))

    def planned(*overrides):
        overrides = ["model=tiny", "data=sample", "task=rte", "init_from=null", *overrides]
        return SimpleNamespace(overrides=overrides, cfg=compose(overrides))

    roberta = [planned(f"seed={s}") for s in (0, 1)]
    distil = [planned(f"model.name_or_path={folder}", f"seed={s}") for s in (0, 1)]
    assert head_extras(distil[0].cfg) == ("pre_classifier",) and head_extras(roberta[0].cfg) == ()
    assert head_extras(compose(["model=roberta_base"])) == ()  # a Hub id: nothing local to read
    assert [len(p) for p in form_packs(roberta + distil, max_size=8)] == [2, 1, 1]
