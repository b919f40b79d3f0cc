"""Where a run lives, and what makes two configurations the same run.

A run's directory is derived from its configuration alone (no clock), so that re-running a command or
a sweep finds what is done: ``<results_dir>/runs/<task>/<method>/<setting>/seed=<seed>/``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

# Settings that change where, how fast or under which name a run executes, not what it computes.
# ``experiment`` (the protocol) is NOT among them: a run made by hand with a paper's settings but
# another protocol is another run, for the sweep (which would otherwise skip its own run) and for the
# report (which takes a paper table's runs by protocol) alike. The grid that launched a run is not
# part of it: every grid of one protocol finds the same run.
NOT_IDENTITY = ("seed", "results_dir", "device", "logger", "log_every", "num_workers", "rerun",
                "eval_batch_size", "compile", "grid_name", "pack")


def _plain(cfg: DictConfig | Mapping) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def identity(cfg: DictConfig | Mapping) -> dict:
    """Every result-changing setting of ``cfg``, as a plain dict: what the config hash covers."""
    plain = _plain(cfg)
    out = {k: v for k, v in plain.items() if k not in NOT_IDENTITY and k != "hydra"}
    data = plain.get("data") or {}
    out["data"] = {"source": data.get("source"), "dir": data.get("dir")}  # caches are not identity
    out["init_from"] = init_identity(plain)
    out["model"] = {k: v for k, v in (plain.get("model") or {}).items() if k != "name"}
    return out


def config_hash(cfg: DictConfig | Mapping) -> str:
    """sha256 of the identity: the setting name carries its first 8 characters, a checkpoint all."""
    return hashlib.sha256(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()


def setting_name(cfg: DictConfig | Mapping) -> str:
    """``lr=0.0005,bs=32,r=8,h=<hash of every other result-changing setting>``."""
    plain = _plain(cfg)
    return (f"lr={plain['lr']:g},bs={plain['batch_size']},r={plain['adapter']['rank']},"
            f"h={config_hash(plain)[:8]}")


def init_identity(plain: Mapping):
    """``init_from`` as identity sees it: a run directory is named relative to <results_dir>/runs when
    it lies there (moving results_dir changes nothing), and a last part ``seed=<this run's seed>``
    reads ``seed=*``, so that the seeds of one setting, each started from the MNLI run of its own seed,
    share one setting name."""
    value = plain.get("init_from")
    if value in (None, "none", "null", "mnli"):
        return value
    path = Path(str(value))
    if path.name == f"seed={plain.get('seed')}":
        path = path.parent / "seed=*"
    runs = Path(str(plain.get("results_dir", "results"))) / "runs"
    for inside, root in ((path, runs), (path.parent.resolve() / path.name, runs.resolve())):
        try:
            return str(inside.relative_to(root))
        except ValueError:
            pass
    return str(path)


def run_dir(cfg: DictConfig | Mapping) -> Path:
    plain = _plain(cfg)
    return (Path(str(plain["results_dir"])) / "runs" / plain["task"]["name"] / plain["adapter"]["name"]
            / setting_name(plain) / f"seed={plain['seed']}")


def differences(old: Mapping, new: Mapping, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ between two nested dicts, with both values."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out
