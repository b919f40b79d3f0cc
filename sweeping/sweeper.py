"""The sweeper (a Hydra Sweeper): plan the grid, launch what is ready as one batch of jobs, plan again.

sweeping.cli sets it up with the running app's Hydra context and config, and calls ``sweep`` with the
command-line overrides (a Hydra Sweeper's interface; Hydra 1.3 only instantiates sweepers that live
in the installed ``hydra_plugins`` namespace, hence not through ``hydra.sweeper``). The launcher is whatever ``hydra/launcher`` names -- basic (sequential, in process),
joblib (local processes; with ``gpus=N`` one run per GPU), submitit_local, submitit_slurm -- and is
given the *train* config as the jobs' primary config: each job is composed from train.yaml and its
overrides and runs ``training.run.run`` (sweeping.job.TrainJob), so a job's config, and so its run
directory, is what ``python train.py <its overrides>`` gives.
"""
from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any, List

from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from training.config import HARNESS_ROOT

from . import dependencies
from .estimate import DEFAULT_THROUGHPUT, estimate, measured_throughput
from .grid import GridError, groups, load_grid, passthrough
from .identity import TRAIN_CONFIG, Composer
from .job import TrainJob
from .packing import form_packs, job_overrides
from .plan import Plan, make_plan
from .progress import Progress
from .stages import write_records

log = logging.getLogger("sweep")


class GridSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None = None, params: Any = None, **_: Any) -> None:
        self.max_batch_size = max_batch_size
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        # The app's own task function is not used: jobs run training through TrainJob.
        self.hydra_context, self.config = hydra_context, config

    # -- options --------------------------------------------------------------------------------
    def option(self, key: str, default=None):
        value = OmegaConf.select(self.config, key, default=default)
        return default if value is None else value

    def results_root(self, grid_name: str) -> Path:
        return Path(str(self.config.results_dir)) / "sweeps" / grid_name

    # -- the launcher ---------------------------------------------------------------------------
    def job_master_config(self) -> DictConfig:
        """The sweep's config with train.yaml as the primary config the launcher composes jobs from."""
        cfg = copy.deepcopy(self.config)
        sweep_dir = str(self.config.hydra.sweep.dir)
        with open_dict(cfg):
            cfg.hydra.job.config_name = TRAIN_CONFIG
            # keep the job directories (and submitit's logs) where the sweep config puts them
            cfg.hydra.overrides.hydra = list(cfg.hydra.overrides.hydra) + [f"hydra.sweep.dir={_quote(sweep_dir)}"]
        return cfg

    def make_launcher(self):
        from hydra.core.plugins import Plugins

        # workers (joblib's processes, submitit's jobs) import sweeping and training from here
        path = os.environ.get("PYTHONPATH", "")
        if str(HARNESS_ROOT) not in path.split(os.pathsep):
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HARNESS_ROOT), path) if p)
        return Plugins.instance().instantiate_launcher(
            hydra_context=self.hydra_context, task_function=TrainJob(gpus=self.option("gpus")),
            config=self.job_master_config())

    # -- the sweep ------------------------------------------------------------------------------
    def sweep(self, arguments: List[str]) -> dict:
        assert self.config is not None and self.hydra_context is not None
        check_no_sweep_syntax(self.hydra_context, arguments)
        grid = load_grid(OmegaConf.select(self.config, "grid"))
        composer = Composer()
        all_groups, needs = dependencies.resolve(groups(grid, passthrough(arguments)), composer)
        retry = bool(self.option("retry_failed", False))
        attempted: set[Path] = set()
        errors: dict[Path, str] = {}
        plan = make_plan(all_groups, needs, composer, retry_failed=retry)

        if self.option("dry_run", False):
            text = dry_run_report(grid.name, plan, self.option("throughput", DEFAULT_THROUGHPUT))
            print(text, flush=True)
            return {"grid": grid.name, "dry_run": True, "counts": plan.counts(), "plan": plan}

        records = self.results_root(grid.name)
        to_run = sum(n for s, n in plan.counts().items() if s not in ("done", "failed"))
        log.info("sweep %s: %d runs, %s", grid.name, len(plan.unique()), describe_counts(plan.counts()))
        progress = Progress(to_run, name=f"sweep {grid.name}")
        launched = returned = 0
        try:
            while True:
                todo = [r for r in plan.todo() if r.directory not in attempted]
                if not todo:
                    break
                if self.launcher is None:
                    self.launcher = self.make_launcher()
                chunk = self.option("max_runs_per_wave") or self.max_batch_size or len(todo)
                for start in range(0, len(todo), chunk):
                    wave = todo[start:start + chunk]
                    launched += len(wave)
                    returned += self.launch_wave(wave, progress, errors)
                    attempted |= {r.directory for r in wave}
                plan = make_plan(all_groups, needs, composer, retry_failed=retry, attempted=attempted,
                                 errors=errors)
                write_records(records, plan)
        finally:
            progress.close()
        paths = write_records(records, plan)
        counts = plan.counts()
        log.info("sweep %s finished: launched %d runs; %s; records in %s", grid.name, launched,
                 describe_counts(counts), paths["choices"].parent)
        for r in plan.unique():
            if r.state in ("blocked", "pending", "error"):
                log.warning("  %s: %s (%s)", r.state, r.label(), r.reason)
        return {"grid": grid.name, "dry_run": False, "launched": launched, "returned": returned,
                "counts": counts, "plan": plan,
                "records": {k: str(v) for k, v in paths.items()}}

    def launch_wave(self, wave, progress: Progress, errors: dict) -> int:
        """Launch ``wave`` as one batch of jobs (packs of runs where ``max_pack_size`` > 1); returns
        how many runs returned their metrics."""
        packs = form_packs(wave, int(self.option("max_pack_size", 1)))
        log.info("launching %d runs in %d jobs", len(wave), len(packs))
        returned = 0
        with progress.watch(wave):
            try:
                results = self.launcher.launch([job_overrides(p) for p in packs], initial_job_idx=self.job_idx)
            except Exception as error:  # e.g. submitit: a job killed (time limit, node failure)
                log.error("the launcher failed (%s: %s); runs of this wave without metrics.json count "
                          "as errors: run the sweep again to retry them", type(error).__name__, error)
                results = [None] * len(packs)
                for run in wave:
                    errors[run.directory] = f"launcher: {type(error).__name__}: {error}"
        self.job_idx += len(packs)
        progress.poll(wave)  # what finished since the watcher's last look
        for pack, result in zip(packs, results):
            for run in pack:
                if result is None:
                    pass
                elif result.status == JobStatus.FAILED:
                    error = result._return_value
                    errors[run.directory] = f"{type(error).__name__}: {error}"
                    log.error("%s raised %s", run.label(), errors[run.directory])
                else:
                    returned += 1
                if run.key not in progress.seen:
                    progress.finished(run, "error", reason=errors.get(run.directory, "ended without metrics.json"))
        return returned


def _quote(value: str) -> str:
    from .identity import quote
    return quote(value)


def check_no_sweep_syntax(hydra_context: HydraContext, arguments: List[str]) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create(config_loader=hydra_context.config_loader)
    for override in parser.parse_overrides(arguments):
        if override.is_sweep_override():
            raise GridError(f"{override.input_line!r}: sweep.py takes its search space from the grid "
                            "(configs/grid/); put several values there, e.g. grid.lr=[1e-4,5e-4]")


def describe_counts(counts: dict[str, int]) -> str:
    order = ("done", "failed", "todo", "blocked", "pending", "error")
    names = {"todo": "to do"}
    return ", ".join(f"{counts.get(s, 0)} {names.get(s, s)}" for s in order if counts.get(s) or s in ("done", "todo"))


def dry_run_report(name: str, plan: Plan, throughput="900") -> str:
    """The runs to do and done, and the GPU-hours of those to do."""
    runs = plan.unique()
    lines = [f"sweep {name}: {len(runs)} runs ({sum(r.stage == 'search' for r in runs)} search, "
             f"{sum(r.stage == 'replicate' for r in runs)} replication only): {describe_counts(plan.counts())}"]
    remaining = [r for r in runs if r.state not in ("done", "failed")]
    for title, selected in (("to do", remaining), ("done", [r for r in runs if r.state in ("done", "failed")])):
        lines.append(f"{title} ({len(selected)}):")
        for r in selected:
            extra = f" [{r.reason}]" if r.reason and r.state != "done" else ""
            score = f" {r.score:.4f}" if r.score is not None else ""
            lines.append(f"  {r.state:8s} {r.stage:9s} {r.label()}{score}{extra}")
    measured = measured_throughput([_metrics(r) for r in runs if r.state == "done"])
    if str(throughput) == "measured":
        speed, source = (measured, "measured on the finished runs") if measured else (DEFAULT_THROUGHPUT, "default")
    else:
        speed, source = float(throughput), "throughput"
    est = estimate([r.cfg for r in remaining], speed)
    lines.append(f"estimate: {est.runs} runs to do, {est.examples:,.0f} examples, "
                 f"{est.gpu_hours:,.2f} GPU-hours at {speed:,.0f} examples/s per GPU ({source}; "
                 "override with throughput=<examples/s> or throughput=measured)")
    if measured and source != "measured on the finished runs":
        lines.append(f"  (the finished runs measured {measured:,.0f} examples/s)")
    return "\n".join(lines)


def _metrics(run) -> dict | None:
    from .identity import status
    return status(run.directory).metrics


__all__ = ["GridSweeper", "dry_run_report"]
