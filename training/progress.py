"""Progress of a run or pack: on a terminal a tqdm bar that moves every step (tqdm limits its own
redraws), off a terminal a plain log line every `log_every` steps; and each run's experiment tracker
(training/loggers.py), all on one step axis."""
from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

from training.loggers import flat_hparams, make_logger

log = logging.getLogger("train")


def run_name(cfg) -> str:
    return f"{cfg.task.name}/{cfg.adapter.name}/lr={cfg.lr:g}/seed={cfg.seed}"


class Progress:
    def __init__(self, name: str, steps_per_epoch: int, members=(), logger: str = "none"):
        self.name, self.steps_per_epoch = name, steps_per_epoch
        self.on_terminal = sys.stderr.isatty()
        self.bar, self.epoch, self.epochs = None, 0, 0
        self.loggers = {}
        for member in members:
            tracker = make_logger(logger, member.directory, run_name(member.cfg), flat_hparams(member.info))
            if tracker is not None:
                self.loggers[str(member.directory)] = tracker

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.epoch, self.epochs = epoch, epochs

    def track(self, loader):
        """`loader`, advancing the bar by one at each batch it yields (on a terminal)."""
        if not self.on_terminal:
            return loader
        self.bar = tqdm(loader, total=self.steps_per_epoch, desc=f"{self.name} epoch {self.epoch}/{self.epochs}",
                        leave=False, dynamic_ncols=True, file=sys.stderr)
        return self.bar

    def global_step(self, step: int) -> int:
        return (self.epoch - 1) * self.steps_per_epoch + step

    def step(self, step: int, members, mean_losses: list[float]) -> None:
        """Every `log_every` steps: the mean losses so far in the epoch (the loop's one host sync)."""
        for member, loss in zip(members, mean_losses):
            tracker = self.loggers.get(str(member.directory))
            if tracker:
                tracker.log({"train/loss": loss, "train/lr": member.scheduler.get_last_lr()[0]},
                            self.global_step(step))
        losses = " ".join(f"{loss:.4f}" for loss in mean_losses)
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {losses}", refresh=False)
        else:
            log.info("%s epoch %d step %d/%d loss %s", self.name, self.epoch, step, self.steps_per_epoch, losses)

    def end_epoch(self, member, record: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        scores = " ".join(f"{k} {v:.4f}" for k, v in record["validation"].items())
        log.info("%s epoch %d: loss %.4f, %s, %.0f examples/s", run_name(member.cfg), record["epoch"],
                 record["train_loss"], scores, record["examples_per_s"])
        tracker = self.loggers.get(str(member.directory))
        if tracker:  # validation on the training step axis: at the step that ends the epoch
            tracker.log({f"validation/{k}": v for k, v in record["validation"].items()},
                        record["epoch"] * self.steps_per_epoch)

    def close(self, members=()) -> None:
        if self.bar is not None:
            self.bar.close()
        failed = {str(m.directory) for m in members if m.failure is not None}
        for key, tracker in self.loggers.items():
            tracker.close(failed=key in failed)
