"""Resume state, one per epoch: trainable tensors (safetensors), optimiser, schedule, RNG and the
best-so-far record (torch.save, read back with weights_only=True). The data position is the epoch
count: each epoch's order is drawn from (seed, epoch), so nothing else needs saving."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

import adapters

NAME = "checkpoint"


def save(directory: Path, model, optimizer, scheduler, epoch: int, best: dict) -> None:
    """Write the new checkpoint beside the old one, then swap: an interruption leaves one intact."""
    final, fresh, old = (directory / NAME, directory / f"{NAME}.new", directory / f"{NAME}.old")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    adapters.save_trainable(model, fresh / "trainable.safetensors")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"epoch": epoch, "best": best, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng}, fresh / "state.pt")
    if final.exists():
        final.rename(old)
    fresh.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _latest(directory: Path) -> Path | None:
    return next((p for p in (directory / NAME, directory / f"{NAME}.old") if (p / "state.pt").exists()),
                None)


def saved_epoch(directory: Path) -> int:
    """The epoch the latest checkpoint was taken after (0: none)."""
    path = _latest(directory)
    return torch.load(path / "state.pt", weights_only=True)["epoch"] if path else 0


def load(directory: Path, model, optimizer, scheduler) -> dict | None:
    """Restore the latest checkpoint into model, optimiser and schedule; None when there is none."""
    path = _latest(directory)
    if path is None:
        return None
    state = torch.load(path / "state.pt", weights_only=True, map_location="cpu")
    adapters.load_trainable(model, path / "trainable.safetensors")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return {"epoch": state["epoch"], "best": state["best"]}


def remove(directory: Path) -> None:
    for name in (NAME, f"{NAME}.old", f"{NAME}.new"):
        shutil.rmtree(directory / name, ignore_errors=True)
