"""Train one run (or, with -m, one Hydra multirun job per combination).

    python train.py experiment=quickstart
    python train.py task=rte adapter=symlora adapter.rank=16 seed=3
    python train.py -m adapter=lora,symlora seed=0,1,2
    python train.py task=rte pack.seed=[0,1,2,3] pack.lr=[4e-4,5e-4]   # 8 runs in one pass

The run directory it leaves is described in docs/run_directory.md. Only Hydra is imported at the top:
`--help`, `--cfg job`, `--info` and shell completion answer without loading torch or transformers.
"""
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from training.cli import fail, one_line_errors, prepare_argv, quiet_interrupt
from training.config import CONFIG_DIR  # registers the config resolvers


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base=None)
def main(cfg: DictConfig) -> float | None:
    import datasets  # the training stack (torch, transformers, datasets) from here on

    import rundir
    from rundir import run_dir
    from training.config import resolved
    from training.preflight import preflight
    from training.pack import pack_jobs
    from training.records import run_records
    from training.run import MissingInitRun, run_pack
    from training.schema import check_task_overrides, validate

    datasets.disable_progress_bars()  # tokenising draws one bar per split and map: quiet, even on a terminal
    overrides = list(HydraConfig.get().overrides.task)
    with one_line_errors("train.py"):  # a bad option, file or model: one line, exit status 2, no traceback
        try:
            jobs = pack_jobs(cfg, overrides)
            runs = [resolved(job_cfg) for job_cfg, _ in jobs]
            for (job_cfg, job_overrides), run_cfg in zip(jobs, runs):  # every option, before any path is made
                check_task_overrides(job_cfg, job_overrides)
                validate(run_cfg)
            preflight(runs[0])  # the model exists, holds max_seq_len and fits its tokenizer; the data is there
            to_train = [run_dir(c) for c in runs if c.rerun or not rundir.read_run(run_dir(c)).finished]
            with run_records(to_train, sys.argv, overrides):  # commands.jsonl and train.log in each run directory
                results = run_pack(jobs)
        except MissingInitRun as error:  # the MNLI run to start from is missing: the command that makes it
            fail("train.py", error)
    # The best validation score of a lone run, for Hydra sweepers that optimise a return value.
    metrics = results[0]
    return metrics["best"][metrics["main_metric"]] if len(results) == 1 and metrics["status"] == "done" else None


if __name__ == "__main__":
    with quiet_interrupt("train.py"):
        sys.argv = prepare_argv("train.py", "train")  # unknown or repeated keys: one line before Hydra composes
        main()
