"""Resume state, one per epoch: trainable tensors (safetensors), optimiser, schedule, RNG, the
best-so-far record and the hash of the configuration that made it (torch.save, read back with
weights_only=True). The data position is the epoch count: each epoch's order is drawn from
(seed, epoch), so nothing else needs saving.

Two checkpoints are kept, the latest and the one before, so that a damaged file (a full disk, a
truncated copy) costs one epoch instead of the run. A new one is written beside them and swapped
in; ``state.pt`` is written last within it, so a checkpoint with a ``state.pt`` is complete.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch

import adapters

log = logging.getLogger(__name__)
NAME = "checkpoint"
_LATEST, _OLDER, _FRESH = NAME, f"{NAME}.old", f"{NAME}.new"


def save(directory: Path, model, optimizer, scheduler, epoch: int, best: dict, config_hash: str) -> None:
    final, older, fresh = (directory / _LATEST, directory / _OLDER, directory / _FRESH)
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    adapters.save_trainable(model, fresh / "trainable.safetensors")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"epoch": epoch, "best": best, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng, "config_hash": config_hash},
               fresh / "state.pt.tmp")
    os.replace(fresh / "state.pt.tmp", fresh / "state.pt")
    # Any kill between these renames leaves at least one complete checkpoint among the three names.
    if final.exists():
        shutil.rmtree(older, ignore_errors=True)
        final.rename(older)
    fresh.rename(final)


def _candidates(directory: Path) -> list[tuple[int, Path, dict]]:
    """Complete, readable checkpoints, newest epoch first; a damaged one is named in the log."""
    found = []
    for name in (_LATEST, _FRESH, _OLDER):
        path = Path(directory) / name / "state.pt"
        if not path.exists():
            continue
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
            epoch = int(state["epoch"])
        except Exception as error:  # a truncated or foreign file: any error means "not usable"
            log.warning("%s is damaged (%s: %s); trying the older checkpoint", path, type(error).__name__,
                        str(error).splitlines()[0] if str(error) else "")
            continue
        found.append((epoch, path.parent, state))
    return sorted(found, key=lambda item: -item[0])


def saved_epoch(directory: Path) -> int:
    """The epoch the latest usable checkpoint was taken after (0: none)."""
    found = _candidates(directory)
    return found[0][0] if found else 0


def load(directory: Path, model, optimizer, scheduler, config_hash: str) -> dict | None:
    """Restore the newest usable checkpoint into model, optimiser and schedule; None when there is
    none. Refuses a checkpoint made by another configuration."""
    damaged = []
    for epoch, path, state in _candidates(directory):
        if state.get("config_hash") != config_hash:
            raise ValueError(f"{path} was made by another configuration (config hash "
                             f"{str(state.get('config_hash'))[:12]}…, this run's is {config_hash[:12]}…): "
                             "refusing to resume from it; rerun=true starts the run afresh")
        try:
            adapters.load_trainable(model, path / "trainable.safetensors")
        except Exception as error:
            log.warning("%s is damaged (%s); trying the older checkpoint", path / "trainable.safetensors", error)
            damaged.append(str(path / "trainable.safetensors"))
            continue
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        return {"epoch": epoch, "best": state["best"]}
    present = [p for p in (Path(directory) / n / "state.pt" for n in (_LATEST, _FRESH, _OLDER)) if p.exists()]
    if present or damaged:
        raise ValueError(f"no usable checkpoint in {directory}: {', '.join(map(str, present))} damaged; "
                         "rerun=true starts the run afresh")
    return None


def remove(directory: Path) -> None:
    for name in (_LATEST, _OLDER, _FRESH):
        shutil.rmtree(Path(directory) / name, ignore_errors=True)
