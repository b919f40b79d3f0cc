"""Resume state, one per epoch: trainable tensors (safetensors), optimiser, schedule, RNG, the
best-so-far record, the hash of the configuration that made it and the fingerprint of the data it
trained on (torch.save, read back with weights_only=True). The data position is the epoch count: each
epoch's order is drawn from (seed, epoch), so nothing else needs saving. A resume is refused when the
configuration or any split's file changed since (``data_fingerprint``): the same run on other data
would report numbers of neither.

Two checkpoints are kept, the latest and the one before, so that a damaged file (a full disk, a
truncated copy) costs one epoch instead of the run. A new one is written beside them and swapped
in; ``state.pt`` is written last within it, so a checkpoint with a ``state.pt`` is complete.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import torch

import adapters
from rundir import RunDirError

log = logging.getLogger(__name__)
NAME = "checkpoint"
_LATEST, _OLDER, _FRESH = NAME, f"{NAME}.old", f"{NAME}.new"


def data_fingerprint(data) -> dict:
    """What the run's data is (a ``training.data.RunData``), per split as metrics.json names it: a local
    file's size and sha256; for the Hub's data (no file here), the dataset's own ``_fingerprint``."""
    out = {}
    for name, record in sorted(data.record().items()):
        path = Path(record["file"])
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            out[name] = {"file": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
        else:  # the Hub: `datasets` fingerprints what it downloaded (its cache files)
            task, _, split = name.rpartition("/")
            out[name] = {"file": record["file"],
                         "fingerprint": data.fingerprints.get(task or data.task.name, {}).get(split)}
    return out


def _check_data(path: Path, saved: dict | None, data: dict | None) -> None:
    """Refuse to resume on other data than the checkpoint's, naming the first file that changed."""
    if saved is None or data is None:  # a checkpoint from before data was recorded, or a caller without
        return
    for split in sorted(set(saved) | set(data)):
        then, now = saved.get(split), data.get(split)
        if then != now:
            file = (now or then)["file"]
            raise RunDirError(f"{file} changed since {path} was saved (the {split} split: {_describe(then)} "
                              f"then, {_describe(now)} now): refusing to resume on other data; put the data "
                              "back, or rerun=true trains the run afresh on it")


def _describe(entry: dict | None) -> str:
    if entry is None:
        return "absent"
    if "sha256" in entry:
        return f"{entry['bytes']} bytes, sha256 {entry['sha256'][:12]}…"
    return f"fingerprint {entry.get('fingerprint')}"


def save(directory: Path, model, optimizer, scheduler, epoch: int, best: dict, config_hash: str,
         data: dict | None = None) -> None:
    final, older, fresh = (directory / _LATEST, directory / _OLDER, directory / _FRESH)
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    adapters.save_trainable(model, fresh / "trainable.safetensors")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"epoch": epoch, "best": best, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng, "config_hash": config_hash, "data": data},
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


def load(directory: Path, model, optimizer, scheduler, config_hash: str, data: dict | None = None) -> dict | None:
    """Restore the newest usable checkpoint into model, optimiser and schedule; None when there is
    none. Refuses a checkpoint made by another configuration, or on other data (``data``: this run's
    ``data_fingerprint``)."""
    damaged = []
    for epoch, path, state in _candidates(directory):
        if state.get("config_hash") != config_hash:
            raise RunDirError(f"{path} was made by another configuration (config hash "
                             f"{str(state.get('config_hash'))[:12]}…, this run's is {config_hash[:12]}…): "
                             "refusing to resume from it; rerun=true starts the run afresh")
        _check_data(path, state.get("data"), data)
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
        raise RunDirError(f"no usable checkpoint in {directory}: {', '.join(map(str, present))} damaged; "
                         "rerun=true starts the run afresh")
    return None


def remove(directory: Path) -> None:
    for name in (_LATEST, _OLDER, _FRESH):
        shutil.rmtree(Path(directory) / name, ignore_errors=True)
