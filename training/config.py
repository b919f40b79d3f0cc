"""Composing run configurations outside `@hydra.main` (tests, sweep.py) and the resolvers they use."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from training.help import help_text

HARNESS_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = HARNESS_ROOT / "configs"

# `${mul:2,${adapter.rank}}`: the DeLoRA report's alpha = 2r. Registered once, at import.
if not OmegaConf.has_resolver("mul"):
    OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
# `${harness_help:train}`: the generated part of `--help` (configs/hydra/help/harness.yaml).
if not OmegaConf.has_resolver("harness_help"):
    OmegaConf.register_new_resolver("harness_help", help_text)


def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "train") -> DictConfig:
    """The configuration `python train.py <overrides>` would run, resolved."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside a running Hydra app (train.py, sweep.py)
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    else:
        with initialize_config_dir(str(CONFIG_DIR), version_base=None):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    return resolved(cfg)


def resolved(cfg: DictConfig) -> DictConfig:
    """A resolved copy without the `hydra` node, so that it can be saved and compared."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    cfg.pop("hydra", None)
    return cfg


def resolve_path(path: str | Path) -> Path:
    """A relative path as the user means it: from the working directory, else from the harness."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return HARNESS_ROOT / path
