"""The entry point behind sweep.py, and the same sweep called from Python (tests, notebooks).

``python sweep.py grid=<name> [train.py overrides] [dry_run=true] [retry_failed=true]
[throughput=<examples/s>|measured] [gpus=N] [hydra/launcher=joblib|local_gpus|submitit_local|
submitit_slurm|slurm hydra.launcher.<option>=...]``.

sweep.py is an ordinary Hydra app (configs/sweep.yaml = train.yaml + a grid + the sweep options):
its one job is the sweep, which hands the grid's runs to the launcher ``hydra/launcher`` names, wave
by wave (sweeping.sweeper.GridSweeper). Hydra 1.3 instantiates sweepers only from the installed
``hydra_plugins`` namespace, so the sweeper is driven from here rather than named in
``hydra.sweeper``; launchers are instantiated by Hydra's own Plugins machinery as usual.
"""
from __future__ import annotations

from typing import Sequence

from omegaconf import DictConfig, OmegaConf

from training.config import CONFIG_DIR

from .job import gpu_count

SWEEP_CONFIG = "sweep"

# `n_jobs: ${sweep_gpu_count:${gpus}}` in configs/hydra/launcher/local_gpus.yaml
if not OmegaConf.has_resolver("sweep_gpu_count"):
    OmegaConf.register_new_resolver("sweep_gpu_count", gpu_count)


def sweep_job(cfg: DictConfig) -> dict:
    """The app's task function: set up the sweeper with this run's Hydra context and sweep."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import HydraContext

    from .sweeper import GridSweeper

    hydra_cfg = HydraConfig.get()
    full = OmegaConf.create({**OmegaConf.to_container(cfg, resolve=False),
                             "hydra": OmegaConf.to_container(hydra_cfg, resolve=False, enum_to_str=True)})
    context = HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=Callbacks(full))
    sweeper = GridSweeper()
    sweeper.setup(hydra_context=context, task_function=sweep_job, config=full)
    return sweeper.sweep(arguments=list(hydra_cfg.overrides.task))


def main() -> None:
    """sweep.py: Hydra's own command line (overrides, --cfg job, --info, -h ...)."""
    import hydra

    hydra.main(config_path=str(CONFIG_DIR), config_name=SWEEP_CONFIG, version_base=None)(sweep_job)()


def run_sweep(overrides: Sequence[str] = ()) -> dict:
    """What ``python sweep.py <overrides>`` does, in this process; returns the sweep's summary
    (grid, counts, launched, plan, records). Errors propagate (no sys.exit)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    hydra_app = Hydra.create_main_hydra2(task_name="sweep",
                                         config_search_path=create_config_search_path(f"file://{CONFIG_DIR}"))
    try:
        return hydra_app.run(config_name=SWEEP_CONFIG, task_function=sweep_job,
                             overrides=list(overrides)).return_value
    finally:
        GlobalHydra.instance().clear()
