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
    from training.entry import train  # the training stack (torch, transformers, datasets) from here on
    from training.run import MissingInitRun

    with one_line_errors("train.py"):  # a bad option, file or model: one line, exit status 2, no traceback
        try:  # commands.jsonl and train.log in each run directory, as a sweep's jobs do
            results = train(cfg, list(HydraConfig.get().overrides.task), sys.argv)
        except MissingInitRun as error:  # the MNLI run to start from is missing: the command that makes it
            fail("train.py", error)
    # The best validation score of a lone run, for Hydra sweepers that optimise a return value.
    metrics = results[0]
    return metrics["best"][metrics["main_metric"]] if len(results) == 1 and metrics["status"] == "done" else None


if __name__ == "__main__":
    with quiet_interrupt("train.py"):
        sys.argv = prepare_argv("train.py", "train")  # unknown or repeated keys: one line before Hydra composes
        main()
