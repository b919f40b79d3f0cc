"""Progress of a run or pack: a tqdm bar on a terminal, plain periodic log lines otherwise, and
optional TensorBoard event files in each run directory."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm.auto import tqdm

log = logging.getLogger("train")


def run_name(cfg) -> str:
    return f"{cfg.task.name}/{cfg.adapter.name}/lr={cfg.lr:g}/seed={cfg.seed}"


class Progress:
    def __init__(self, name: str, steps_per_epoch: int, tensorboard_dirs: dict | None = None):
        self.name, self.steps_per_epoch = name, steps_per_epoch
        self.on_terminal = sys.stderr.isatty()
        self.bar, self.epoch = None, 0
        self.writers = {}
        if tensorboard_dirs:
            from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` extra
            self.writers = {key: SummaryWriter(log_dir=str(Path(d))) for key, d in tensorboard_dirs.items()}

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.epoch = epoch
        if self.on_terminal:
            self.bar = tqdm(total=self.steps_per_epoch, desc=f"{self.name} epoch {epoch}/{epochs}",
                            leave=False, dynamic_ncols=True)

    def step(self, step: int, members, mean_losses: list[float]) -> None:
        global_step = (self.epoch - 1) * self.steps_per_epoch + step
        for member, loss in zip(members, mean_losses):
            if str(member.directory) in self.writers:
                writer = self.writers[str(member.directory)]
                writer.add_scalar("train/loss", loss, global_step)
                writer.add_scalar("train/lr", member.scheduler.get_last_lr()[0], global_step)
        losses = " ".join(f"{loss:.4f}" for loss in mean_losses)
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(f"loss {losses}")
        else:
            log.info("%s epoch %d step %d/%d loss %s", self.name, self.epoch, step, self.steps_per_epoch, losses)

    def end_epoch(self, member, record: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        scores = " ".join(f"{k} {v:.4f}" for k, v in record["validation"].items())
        log.info("%s epoch %d: loss %.4f, %s, %.0f examples/s", run_name(member.cfg), record["epoch"],
                 record["train_loss"], scores, record["examples_per_s"])
        writer = self.writers.get(str(member.directory))
        if writer:
            for key, value in record["validation"].items():
                writer.add_scalar(f"validation/{key}", value, record["epoch"])
            writer.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        for writer in self.writers.values():
            writer.close()
