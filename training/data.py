"""The data of one run: the task's splits tokenised once (cached on disk), a seeded order per epoch,
dynamic padding per batch."""
from __future__ import annotations

import logging
import sys

import datasets
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, RandomSampler
from transformers.trainer_pt_utils import LengthGroupedSampler

from glue import get_task, load_glue, make_collator, split_records, tokenize_glue
from training.config import resolve_path

log = logging.getLogger(__name__)
if not sys.stderr.isatty():  # progress bars only on a terminal
    datasets.disable_progress_bars()


class RunData:
    def __init__(self, cfg: DictConfig, task, tokenizer):
        self.cfg, self.task = cfg, task
        self.records: dict[str, dict] = {}  # task -> split -> SplitRecord
        self.fingerprints: dict[str, dict] = {}  # task -> split -> the loaded dataset's own fingerprint
        self.splits = {task.name: self._load(task, tokenizer)}
        for other in map(get_task, task.predicts):  # MNLI's model predicts the diagnostic set (AX)
            try:
                self.splits[other.name] = self._load(other, tokenizer)
            except FileNotFoundError as missing:
                log.info("no %s test set (%s): it is not predicted", other.display_name, missing)
        self.collate = make_collator(tokenizer, pad_to_multiple_of=cfg.pad_to_multiple_of)
        self.train_size = len(self.splits[task.name]["train"])
        self.train_lengths = ([len(ids) for ids in self.splits[task.name]["train"]["input_ids"]]
                              if cfg.get("group_by_length") else None)

    def _load(self, task, tokenizer):
        data = self.cfg.data
        raw = load_glue(task.name, source=data.source,
                        data_dir=resolve_path(data.dir) if data.dir else None, cache_dir=data.cache_dir)
        self.records[task.name] = split_records(raw)
        self.fingerprints[task.name] = {split: getattr(ds, "_fingerprint", None) for split, ds in raw.items()}
        return tokenize_glue(raw, task, tokenizer, max_seq_len=self.cfg.max_seq_len,
                             cache_dir=data.tokenized_cache)

    def record(self) -> dict:
        """What reading the data did (metrics.json's ``data``): split -> {file, rows_in_file,
        rows_read, rows_skipped, skipped_lines}; another task's splits (MNLI's AX) as ``ax/test``."""
        return {split if name == self.task.name else f"{name}/{split}": record.as_dict()
                for name, records in self.records.items() for split, record in records.items()}

    def train_loader(self, epoch: int, seed: int) -> DataLoader:
        """Epoch `epoch`'s order comes from (seed, epoch) alone, so a resumed run sees the same data."""
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        train = self.splits[self.task.name]["train"]
        if self.train_lengths is not None:  # shuffled, then similar lengths batched together: less padding
            sampler = LengthGroupedSampler(self.cfg.batch_size, lengths=self.train_lengths, generator=generator)
        else:
            sampler = RandomSampler(train, generator=generator)
        return DataLoader(train, batch_size=self.cfg.batch_size, sampler=sampler,
                          collate_fn=self.collate, num_workers=self.cfg.num_workers,
                          pin_memory=torch.cuda.is_available())

    def eval_loader(self, split: str, task_name: str | None = None) -> DataLoader:
        return DataLoader(self.splits[task_name or self.task.name][split], batch_size=self.cfg.eval_batch_size,
                          collate_fn=self.collate, num_workers=self.cfg.num_workers)

    def prediction_splits(self):
        """(task, split, is_test) of every validation and test split present, in a fixed order."""
        for name, splits in self.splits.items():
            spec = get_task(name)
            for split, is_test in [(s, False) for s, _ in spec.eval_splits] + [(s, True) for s, _ in spec.test_splits]:
                if split in splits:
                    yield name, split, is_test
