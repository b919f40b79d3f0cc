"""sweep.py as its own Hydra app: load the grid, plan it, estimate it, launch it in waves.

``python sweep.py grid=<name> [train.py overrides] [dry_run=true] [retry_failed=true]
[throughput=<examples/s>|measured] [gpus=N] [hydra/launcher=joblib|local_gpus|submitit_local|
submitit_slurm|slurm hydra.launcher.<option>=...]``.

configs/sweep.yaml is train.yaml plus a grid and the sweep's options. The app runs once (Hydra's run
mode); the grid is its search space, so Hydra's own sweeper is not involved, and the runs go to the
launcher ``hydra/launcher`` names through Hydra's public plugin interface (sweeping/launch.py). Jobs
import this package as installed (``pip install -e .``), in whatever process or node runs them.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from omegaconf import DictConfig, OmegaConf

from training.config import CONFIG_DIR

from . import dependencies
from .dry_run import describe_counts, dry_run_report
from .estimate import DEFAULT_THROUGHPUT
from .grid import GridError, groups, load_grid, passthrough
from .identity import Composer
from .job import gpu_count
from .launch import WaveLauncher
from .plan import make_plan
from .progress import Progress
from .stages import write_records

SWEEP_CONFIG = "sweep"
log = logging.getLogger("sweep")

# `n_jobs: ${sweep_gpu_count:${gpus}}` in configs/hydra/launcher/local_gpus.yaml
if not OmegaConf.has_resolver("sweep_gpu_count"):
    OmegaConf.register_new_resolver("sweep_gpu_count", gpu_count)


def sweep(cfg: DictConfig, overrides: Sequence[str]) -> dict:
    """The whole sweep: ``cfg`` is sweep.yaml composed with ``overrides`` (the hydra node included)."""
    grid = load_grid(cfg.get("grid"))
    composer = Composer()
    all_groups, needs = dependencies.resolve(groups(grid, passthrough(overrides)), composer)
    retry = bool(cfg.retry_failed)
    plan = make_plan(all_groups, needs, composer, retry_failed=retry)

    if cfg.dry_run:
        print(dry_run_report(grid.name, plan, cfg.throughput or DEFAULT_THROUGHPUT), flush=True)
        return {"grid": grid.name, "dry_run": True, "counts": plan.counts(), "plan": plan}

    records = Path(str(cfg.results_dir)) / "sweeps" / grid.name
    log.info("sweep %s: %d runs, %s", grid.name, len(plan.unique()), describe_counts(plan.counts()))
    progress = Progress(sum(n for s, n in plan.counts().items() if s not in ("done", "failed")),
                        name=f"sweep {grid.name}")
    launcher, attempted, errors = None, set(), {}
    launched = returned = 0
    try:
        # A wave is every run that is ready; the runs it unblocks (RTE after its MNLI run) make the next.
        while todo := [r for r in plan.todo() if r.directory not in attempted]:
            launcher = launcher or WaveLauncher(cfg)
            chunk = cfg.max_runs_per_wave or len(todo)
            for start in range(0, len(todo), chunk):
                wave = todo[start:start + chunk]
                launched += len(wave)
                returned += launcher.launch(wave, progress, errors)
                attempted |= {r.directory for r in wave}
            plan = make_plan(all_groups, needs, composer, retry_failed=retry, attempted=attempted, errors=errors)
            write_records(records, plan)
    finally:
        progress.close()
    paths = write_records(records, plan)
    log.info("sweep %s finished: launched %d runs; %s; records in %s", grid.name, launched,
             describe_counts(plan.counts()), paths["choices"].parent)
    for r in plan.unique():
        if r.state in ("blocked", "pending", "error"):
            log.warning("  %s: %s (%s)", r.state, r.label(), r.reason)
    ran = [r for r in plan.unique() if r.directory in attempted]
    failed = sum(r.state in ("failed", "error") for r in ran)
    if failed:
        log.warning("sweep %s: %d of the %d runs it launched failed", grid.name, failed, len(ran))
    return {"grid": grid.name, "dry_run": False, "launched": launched, "returned": returned, "failed": failed,
            "ran": len(ran), "counts": plan.counts(), "plan": plan,
            "records": {k: str(v) for k, v in paths.items()}}


def exit_status(summary: dict) -> int:
    """sweep.py's exit status: 1 when it launched runs and every one of them failed (a scheduler or a
    script then sees the sweep did nothing useful), else 0; a bad grid or option is 2 (``fail``)."""
    if summary.get("ran") and summary["failed"] == summary["ran"]:
        print(f"sweep.py: all {summary['ran']} runs it launched failed (their reasons are above)", file=sys.stderr)
        return 1
    return 0


def refuse_sweep_syntax(overrides: Sequence[str]) -> None:
    """Before Hydra composes (which would suggest --multirun): several values belong in the grid."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override():
            raise GridError(f"{override.input_line!r}: sweep.py takes its search space from the grid "
                            "(configs/grid/); put several values there, e.g. grid.lr=[1e-4,5e-4]")


def main() -> None:
    """sweep.py: Hydra's own command line (overrides, --cfg job, --info, -h ...). A bad grid or
    option is a message and exit status 2, not a traceback."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(config_path=str(CONFIG_DIR), config_name=SWEEP_CONFIG, version_base=None)
    def sweep_app(cfg: DictConfig) -> None:
        hydra_cfg = HydraConfig.get()
        with_hydra = OmegaConf.create({**OmegaConf.to_container(cfg, resolve=False),
                                       "hydra": OmegaConf.to_container(hydra_cfg, resolve=False, enum_to_str=True)})
        try:
            summary = sweep(with_hydra, list(hydra_cfg.overrides.task))
        except GridError as error:
            fail(error)
        status = exit_status(summary)
        if status:
            sys.exit(status)

    try:  # the overrides among the arguments (flags start with '-')
        refuse_sweep_syntax([a for a in sys.argv[1:] if "=" in a and not a.startswith("-")])
    except GridError as error:
        fail(error)
    sweep_app()


def fail(error: Exception) -> None:
    print(f"sweep.py: {error}", file=sys.stderr)
    sys.exit(2)


@contextmanager
def sweep_config(overrides: Sequence[str] = ()) -> Iterator[DictConfig]:
    """sweep.yaml composed with ``overrides``, its hydra node included, as ``python sweep.py`` sees it;
    Hydra stays initialised (the launchers compose the jobs' configs) until the block ends."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), job_name="sweep", version_base=None):
        cfg = compose(SWEEP_CONFIG, overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        yield cfg


def run_sweep(overrides: Sequence[str] = ()) -> dict:
    """What ``python sweep.py <overrides>`` does, in this process; returns the sweep's summary
    (grid, counts, launched, plan, records). Errors propagate (no sys.exit)."""
    refuse_sweep_syntax(overrides)
    with sweep_config(overrides) as cfg:
        return sweep(cfg, overrides)
