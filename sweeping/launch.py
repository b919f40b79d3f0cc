"""Launching a wave of runs through the Hydra launcher ``hydra/launcher`` names (basic: in this
process; joblib and local_gpus: local processes; submitit_local, submitit_slurm and slurm: submitit).

A launcher is a Hydra plugin: Hydra's public ``Plugins.instantiate_launcher`` builds it from the
sweep's config with train.yaml as the jobs' primary config, so each job's config, and so its run
directory, is what ``python train.py <its overrides>`` gives; the job itself is sweeping.job.TrainJob.
"""
from __future__ import annotations

import copy
import logging

from omegaconf import DictConfig, open_dict, read_write

from .identity import TRAIN_CONFIG, quote
from .job import TrainJob
from .packing import form_packs, job_overrides
from .progress import Progress

log = logging.getLogger("sweep")


class JobCallbacks:
    """The ``hydra.callbacks`` of the sweep's config, called around each job as Hydra's launchers
    expect of a HydraContext's callbacks (``on_job_start`` / ``on_job_end``)."""

    def __init__(self, callbacks_cfg) -> None:
        from hydra.utils import instantiate

        self.callbacks = [instantiate(c) for c in (callbacks_cfg or {}).values()]

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        for callback in self.callbacks:
            callback.on_job_start(config=config, **kwargs)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        for callback in reversed(self.callbacks):
            callback.on_job_end(config=config, job_return=job_return, **kwargs)


def job_master_config(cfg: DictConfig) -> DictConfig:
    """The sweep's config with train.yaml as the primary config the launcher composes jobs from; the
    job directories (and submitit's logs) stay where the sweep config puts them."""
    master = copy.deepcopy(cfg)
    with read_write(master.hydra), open_dict(master.hydra):  # composed configs keep hydra read-only
        master.hydra.job.config_name = TRAIN_CONFIG
        master.hydra.overrides.hydra = [*master.hydra.overrides.hydra,
                                        f"hydra.sweep.dir={quote(str(cfg.hydra.sweep.dir))}",
                                        f"hydra.sweep.subdir={quote(str(cfg.hydra.sweep.subdir))}"]
    return master


class WaveLauncher:
    """The Hydra launcher of the sweep's config, handed one wave of runs at a time."""

    def __init__(self, cfg: DictConfig) -> None:
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.plugins import Plugins
        from hydra.types import HydraContext

        context = HydraContext(config_loader=GlobalHydra.instance().config_loader(),
                               callbacks=JobCallbacks(cfg.hydra.get("callbacks")))
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=context, task_function=TrainJob(gpus=cfg.gpus), config=job_master_config(cfg))
        self.max_pack_size = int(cfg.max_pack_size or 1)
        self.jobs = 0  # job numbers continue across waves (submitit names its log folders by them)

    def launch(self, wave: list, progress: Progress, errors: dict) -> int:
        """Launch ``wave`` as one batch of jobs (packs of runs where ``max_pack_size`` > 1); a run that
        raised, or whose job the launcher lost, goes into ``errors``. Returns how many runs returned."""
        packs = form_packs(wave, self.max_pack_size)
        log.info("launching %d runs in %d jobs", len(wave), len(packs))
        with progress.watch(wave):
            try:
                results = self.launcher.launch([job_overrides(p) for p in packs], initial_job_idx=self.jobs)
            except Exception as error:  # e.g. submitit: a job killed (time limit, node failure)
                log.error("the launcher failed (%s: %s); runs of this wave without metrics.json count as "
                          "errors: run the sweep again to retry them", type(error).__name__, error)
                results = [None] * len(packs)
                for run in wave:
                    errors[run.directory] = f"launcher: {type(error).__name__}: {error}"
        self.jobs += len(packs)
        progress.poll(wave)  # what finished since the watcher's last look
        returned = 0
        for pack, result in zip(packs, results):
            error = job_error(result)
            for run in pack:
                if error is not None:
                    errors[run.directory] = error
                    log.error("%s raised %s", run.label(), error)
                elif result is not None:
                    returned += 1
                if run.key not in progress.seen:
                    progress.finished(run, "error", reason=errors.get(run.directory, "ended without metrics.json"))
        return returned


def job_error(result) -> str | None:
    """What a job raised (a Hydra JobReturn re-raises it on ``return_value``), or None."""
    if result is None:
        return None
    try:
        result.return_value
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None
