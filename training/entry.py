"""The one way into training from a composed train.yaml config: what `python train.py` does with its
config and overrides, and what each job of a sweep does with its own (sweeping/job.py), so that both
leave the same run directory: the run or pack trained (training/pack.py, training/run.py), each
run directory's `commands.jsonl` and `train.log` written (training/records.py).
"""
from __future__ import annotations

import sys
from typing import Sequence

from omegaconf import DictConfig


def train(cfg: DictConfig, overrides: Sequence[str], argv: Sequence[str] | None = None) -> list[dict]:
    """Train the run (or the pack of runs, `pack.*`) of `cfg`, composed with `overrides`; return each
    run's metrics. `argv` is the command line recorded in commands.jsonl (default: this process's).
    Every option is validated, and the model, tokenizer, data and logger checked
    (training/preflight.py), before any run path is computed or anything written; a bad option or
    a missing MNLI run raises training.schema.ConfigError or training.run.MissingInitRun, which
    train.py prints as one line."""
    import datasets  # the training stack (torch, transformers, datasets) from here on

    import rundir
    from training.config import resolved
    from training.pack import pack_jobs
    from training.preflight import preflight
    from training.records import run_records
    from training.run import run_pack
    from training.schema import check_task_overrides, validate

    datasets.disable_progress_bars()  # tokenising draws one bar per split and map: quiet, even on a terminal
    overrides = list(overrides)
    jobs = pack_jobs(cfg, overrides)
    runs = [resolved(job_cfg) for job_cfg, _ in jobs]
    for (job_cfg, job_overrides), run_cfg in zip(jobs, runs):  # every option, before any path is made
        check_task_overrides(job_cfg, job_overrides)
        validate(run_cfg)
    preflight(runs[0])  # the model exists, holds max_seq_len and fits its tokenizer; the data is there
    to_train = [rundir.run_dir(c) for c in runs if c.rerun or not rundir.read_run(rundir.run_dir(c)).finished]
    with run_records(to_train, list(sys.argv if argv is None else argv), overrides):
        return run_pack(jobs)
