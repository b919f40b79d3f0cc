"""Progress of a run: a tqdm bar on a terminal, plain periodic log lines otherwise, and optional
TensorBoard event files."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm.auto import tqdm

log = logging.getLogger("train")


class Progress:
    def __init__(self, name: str, steps_per_epoch: int, log_every: int, tensorboard_dir: Path | None = None):
        self.name, self.steps_per_epoch, self.log_every = name, steps_per_epoch, log_every
        self.on_terminal = sys.stderr.isatty()
        self.bar = None
        self.epoch = 0
        self.writer = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` extra
            self.writer = SummaryWriter(log_dir=str(tensorboard_dir))

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.epoch = epoch
        if self.on_terminal:
            self.bar = tqdm(total=self.steps_per_epoch, desc=f"{self.name} epoch {epoch}/{epochs}",
                            leave=False, dynamic_ncols=True)

    def step(self, step: int, loss: float, lr: float) -> None:
        global_step = (self.epoch - 1) * self.steps_per_epoch + step
        if self.writer:
            self.writer.add_scalar("train/loss", loss, global_step)
            self.writer.add_scalar("train/lr", lr, global_step)
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        else:
            log.info("%s epoch %d step %d/%d loss %.4f lr %.2e", self.name, self.epoch, step,
                     self.steps_per_epoch, loss, lr)

    def end_epoch(self, record: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        scores = " ".join(f"{k} {v:.4f}" for k, v in record["validation"].items())
        log.info("%s epoch %d: loss %.4f, %s, %.0f examples/s", self.name, record["epoch"],
                 record["train_loss"], scores, record["examples_per_s"])
        if self.writer:
            for key, value in record["validation"].items():
                self.writer.add_scalar(f"validation/{key}", value, record["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()
