"""Every combination of the config groups composes, and the presets change what they say."""
import itertools

import pytest

from training.config import CONFIG_DIR, compose

ADAPTERS = sorted(p.stem for p in (CONFIG_DIR / "adapter").glob("*.yaml"))
TASKS = sorted(p.stem for p in (CONFIG_DIR / "task").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONFIG_DIR / "data").glob("*.yaml"))
EXPERIMENTS = [None] + sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_group_option_composes(experiment):
    """Each experiment with every adapter and every task, and every model with every data source
    (the groups are independent of each other, so pairs cover what can clash)."""
    base = [f"experiment={experiment}"] if experiment else []
    pairs = [*(["task=rte", f"adapter={a}"] for a in ADAPTERS), *([f"task={t}"] for t in TASKS),
             *([f"model={m}", f"data={d}", "data.dir=/glue"] for m, d in itertools.product(MODELS, DATA))]
    for overrides in pairs:
        cfg = compose(base + overrides)
        assert cfg.lr > 0 and cfg.batch_size > 0 and cfg.task.name in {"rte", *TASKS}


def test_short_top_level_overrides():
    cfg = compose(["task=rte", "adapter=symlora", "adapter.rank=16", "seed=3", "lr=1e-3", "batch_size=8",
                   "epochs=2", "max_seq_len=128"])
    assert (cfg.adapter.name, cfg.adapter.rank, cfg.adapter.alpha, cfg.seed) == ("symlora", 16, 16, 3)
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.max_seq_len) == (1e-3, 8, 2, 128)


def test_task_files_carry_the_lora_paper_settings():
    expected = {"mnli": (16, 30, 5e-4, None), "sst2": (16, 60, 5e-4, None), "mrpc": (16, 30, 4e-4, "mnli"),
                "cola": (32, 80, 4e-4, None), "qnli": (32, 25, 4e-4, None), "qqp": (16, 25, 5e-4, None),
                "rte": (32, 80, 5e-4, "mnli"), "stsb": (16, 40, 4e-4, "mnli")}
    for task, (batch, epochs, lr, init) in expected.items():
        cfg = compose([f"task={task}"])
        assert (cfg.batch_size, cfg.epochs, cfg.lr, cfg.init_from) == (batch, epochs, lr, init), task


def test_experiment_presets():
    cfg = compose(["experiment=symlora_paper"])
    assert (cfg.adapter.name, cfg.adapter.rank, cfg.adapter.alpha, cfg.max_seq_len) == ("symlora", 8, 8, 128)
    cfg = compose(["experiment=delora_report", "adapter.rank=32"])
    assert (cfg.adapter.name, cfg.adapter.alpha) == ("delora", 64)  # alpha = 2r
    cfg = compose(["experiment=lora_paper"])
    assert (cfg.adapter.name, cfg.max_seq_len) == ("lora", 512)
    cfg = compose(["experiment=asymmetry"])
    assert (cfg.adapter.name, cfg.adapter.options.frozen_init) == ("b_only", "orthogonal")
    cfg = compose(["experiment=quickstart"])
    assert (cfg.model.random_init, cfg.data.source, cfg.device) == (True, "sample", "cpu")
