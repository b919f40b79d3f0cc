"""Train one run (or, with -m, one Hydra multirun job per combination).

    python train.py experiment=quickstart
    python train.py task=rte adapter=symlora adapter.rank=16 seed=3
    python train.py -m adapter=lora,symlora seed=0,1,2

The run directory it leaves is described in docs/run_directory.md.
"""
import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from training.config import CONFIG_DIR  # registers the config resolvers
from training.run import run


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base=None)
def main(cfg: DictConfig) -> float | None:
    metrics = run(cfg, overrides=HydraConfig.get().overrides.task)
    # The best validation score, for Hydra sweepers that optimise a return value.
    return metrics.get("best", {}).get(metrics.get("main_metric")) if metrics["status"] == "done" else None


if __name__ == "__main__":
    main()
