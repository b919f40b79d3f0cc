"""Experiment trackers, one per run, each through its own library (an optional extra):

- `logger=tensorboard`: event files in `<run dir>/tensorboard/` (`pip install -e ".[tensorboard]"`),
  hyperparameters through the HParams plugin;
- `logger=wandb`: a W&B run with the run's name, its files under `<run dir>/wandb/`
  (`.[wandb]`; `WANDB_PROJECT`, default `glue-adapters`; `WANDB_MODE=offline` to sync later);
- `logger=mlflow`: an MLflow run (`.[mlflow]`; `MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_NAME`,
  default `glue-adapters`). Without `MLFLOW_TRACKING_URI` the runs go to a local store,
  `<results_dir>/mlruns/`: MLflow's file store, the one backend the `mlflow-skinny` extra can write
  (its default, `sqlite:///mlflow.db`, needs SQLAlchemy, which only the full `mlflow` installs).

`check_logger` starts nothing but finds out, before a run folder is made, whether a tracker can start.

All of them see one step axis, the optimisation step: `train/loss` and `train/lr` every `log_every`
steps, `validation/<metric>` at the step that ends each epoch.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

LOGGERS = ("none", "tensorboard", "wandb", "mlflow")
PROJECT = "glue-adapters"


def make_logger(kind: str, directory: Path, name: str, hparams: dict):
    """The tracker `kind` for one run, or None for `none`."""
    if kind in (None, "none"):
        return None
    classes = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger, "mlflow": MLflowLogger}
    if kind not in classes:
        raise ValueError(f"logger={kind}: unknown; choose one of {', '.join(LOGGERS)}")
    return classes[kind](Path(directory), name, hparams)


def flat_hparams(info: dict) -> dict:
    """The hyperparameters a tracker shows (scalars and strings only) from the run's metrics.json head."""
    values = {"task": info["task"], "method": info["method"], "seed": info["seed"], "model": info["model"],
              "experiment": info.get("experiment"), **info["hyperparameters"]}
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in values.items()}


class TensorBoardLogger:
    def __init__(self, directory: Path, name: str, hparams: dict):
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` extra

        self.writer = SummaryWriter(log_dir=str(directory / "tensorboard"))
        self.hparams, self.hparams_written = hparams, False

    def log(self, scalars: dict[str, float], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        if not self.hparams_written and any(k.startswith("validation/") for k in scalars):
            # In the run's own event file (add_hparams would open a sub-run): the HParams tab then
            # lists the run's hyperparameters beside its validation scalars.
            from torch.utils.tensorboard.summary import hparams

            metrics = {k: v for k, v in scalars.items() if k.startswith("validation/")}
            for summary in hparams(self.hparams, metrics):
                self.writer.file_writer.add_summary(summary)
            self.hparams_written = True
        self.writer.flush()

    def close(self, failed: bool) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, directory: Path, name: str, hparams: dict):
        import wandb  # needs the `wandb` extra

        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=name, dir=str(directory),
                              config=hparams, reinit="create_new")  # packs: several runs in one process

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(scalars, step=step)

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


def mlflow_store(results_dir: Path) -> str:
    """The tracking URI: MLFLOW_TRACKING_URI, else the local file store `<results_dir>/mlruns`."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    # MLflow 3 keeps its file store in "maintenance mode" and refuses it unless this is set.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (Path(results_dir).resolve() / "mlruns").as_uri()


def results_dir_of(run_directory: Path) -> Path:
    """<results_dir>/runs/<task>/<method>/<setting>/seed=<s> -> <results_dir>."""
    for parent in Path(run_directory).parents:
        if parent.name == "runs":
            return parent.parent
    return Path(run_directory).parent


def mlflow_experiment(results_dir: Path):
    """The MLflow client and the experiment's id (created when new)."""
    from mlflow.tracking import MlflowClient  # needs the `mlflow` extra

    client = MlflowClient(tracking_uri=mlflow_store(results_dir))
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT)
    found = client.get_experiment_by_name(experiment)
    return client, (found.experiment_id if found else client.create_experiment(experiment))


def check_logger(kind: str, results_dir: str | Path) -> None:
    """ValueError (one line: the logger, why, what to do) when the tracker `kind` cannot start."""
    if kind in (None, "none"):
        return
    try:
        if kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        elif kind == "wandb":
            import wandb  # noqa: F401
        elif kind == "mlflow":
            mlflow_experiment(Path(results_dir))
    except ImportError as error:
        raise ValueError(f"logger={kind}: {error.name or kind} is not installed; pip install -e \".[{kind}]\"") from None
    except Exception as error:  # noqa: BLE001 - the tracker's own error, in one line
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"logger={kind}: cannot start ({type(error).__name__}: {first})") from None


class MLflowLogger:
    def __init__(self, directory: Path, name: str, hparams: dict):
        from mlflow.entities import Param

        # The client, not the fluent API: a pack holds several runs open at once.
        self.client, experiment_id = mlflow_experiment(results_dir_of(directory))
        self.run_id = self.client.create_run(experiment_id, run_name=name,
                                             tags={"run_directory": str(directory)}).info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in hparams.items()])

    def log(self, scalars: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), stamp, step) for k, v in scalars.items()])

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
