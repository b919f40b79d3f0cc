"""Tokenisation of a GLUE DatasetDict, cached on disk, and the batch collator.

:func:`tokenize_glue` tokenises every split once per (task, data content, tokenizer, max_seq_len)
and stores the result under ``<cache_dir>/tokenized/<task>-<key>/`` (``save_to_disk``); later calls
with the same inputs ``load_from_disk`` it.  Datasets built in memory (``glue_dir``/``sample``
sources) have no cache files of their own, hence the explicit cache keyed by a content hash.

Columns after tokenisation: ``input_ids``, ``attention_mask`` (and ``token_type_ids`` if the
tokenizer returns them), ``labels`` (int64 class ids, -1 on test splits; float32 for STS-B) and
``idx`` (int32).  Sequences are not padded; :func:`make_collator` pads each batch dynamically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
from pathlib import Path

from .tasks import TaskSpec, get_task

__all__ = ["tokenize_glue", "tokenization_key", "data_fingerprint", "tokenizer_fingerprint",
           "make_collator", "MODEL_INPUTS"]

log = logging.getLogger(__name__)

_CACHE_VERSION = "1"
#: columns a model's forward takes (``idx`` must be removed from a batch before the forward)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels")


def data_fingerprint(dataset_dict) -> str:
    """Content hash of a DatasetDict (split names, schema, every value)."""
    import pyarrow as pa

    h = hashlib.sha256()
    for split in sorted(dataset_dict):
        ds = dataset_dict[split]
        h.update(f"split={split};n={len(ds)};".encode())
        table = ds.data.table
        if getattr(ds, "_indices", None) is not None:  # select/shuffle views
            table = ds.with_format(None).flatten_indices().data.table
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        h.update(memoryview(sink.getvalue()))
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of what determines a tokenizer's output (vocabulary, rules, special tokens)."""
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # truncation/padding are per-call state the tokenizer leaves behind, not its identity
        state.pop("truncation", None)
        state.pop("padding", None)
        h.update(json.dumps(state, sort_keys=True).encode())
    else:
        h.update(str(getattr(tokenizer, "name_or_path", "")).encode())
        h.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    h.update(repr(getattr(tokenizer, "all_special_tokens", None)).encode())
    h.update(repr(getattr(tokenizer, "truncation_side", None)).encode())
    return h.hexdigest()


def tokenization_key(task: str | TaskSpec, dataset_dict, tokenizer, max_seq_len: int) -> str:
    spec = get_task(task)
    h = hashlib.sha256()
    for part in (_CACHE_VERSION, spec.name, data_fingerprint(dataset_dict),
                 tokenizer_fingerprint(tokenizer), str(int(max_seq_len))):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _tokenize_split(ds, spec: TaskSpec, tokenizer, max_seq_len: int, num_proc=None):
    """Tokenise one split (sentence pairs as the tokenizer pairs them; longest-first truncation)."""
    fields = spec.text_fields

    def fn(batch):
        texts = [batch[f] for f in fields]
        enc = tokenizer(*texts, truncation=True, max_length=max_seq_len, padding=False)
        return dict(enc)

    remove = [c for c in ds.column_names if c in fields]
    out = ds.map(fn, batched=True, remove_columns=remove, num_proc=num_proc,
                 desc=f"tokenising {spec.name}")
    out = out.rename_column("label", "labels")
    return out


def tokenize_glue(
    dataset_dict,
    task: str | TaskSpec,
    tokenizer,
    max_seq_len: int = 128,
    cache_dir: str | os.PathLike | None = None,
    num_proc: int | None = None,
):
    """Tokenise every split of a GLUE DatasetDict (from :func:`glue.loading.load_glue`).

    With ``cache_dir``, the result is saved under ``<cache_dir>/tokenized/<task>-<key>`` and
    reused by later calls with the same task, data content, tokenizer and ``max_seq_len``.
    Returns a DatasetDict with ``input_ids``, ``attention_mask`` [, ``token_type_ids``],
    ``labels``, ``idx`` (text columns removed).
    """
    import datasets

    spec = get_task(task)
    if max_seq_len < 8:
        raise ValueError(f"max_seq_len must be >= 8, got {max_seq_len}")
    if cache_dir is None:
        return datasets.DatasetDict(
            {s: _tokenize_split(ds, spec, tokenizer, max_seq_len, num_proc)
             for s, ds in dataset_dict.items()}
        )
    key = tokenization_key(spec, dataset_dict, tokenizer, max_seq_len)
    target = Path(cache_dir) / "tokenized" / f"{spec.name}-L{max_seq_len}-{key}"
    marker = target / "COMPLETE"
    if marker.is_file():
        log.info("tokenised %s loaded from %s", spec.name, target)
        return datasets.load_from_disk(str(target))
    # in-memory result first, then save to a temporary folder and move it into place atomically
    tokenized = datasets.DatasetDict(
        {s: _tokenize_split(ds, spec, tokenizer, max_seq_len, num_proc)
         for s, ds in dataset_dict.items()}
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # A new folder of the umask's mode (mkdtemp's would be 0700: a teammate could not read the cache).
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        tokenized.save_to_disk(str(tmp))
        (tmp / "COMPLETE").write_text(key + "\n")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first (target exists, not empty)
            if not marker.is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("tokenised %s saved to %s", spec.name, target)
    return datasets.load_from_disk(str(target))


def make_collator(tokenizer, pad_to_multiple_of: int | None = None):
    """A ``DataCollatorWithPadding``: pads each batch to its longest sequence (rounded up to
    ``pad_to_multiple_of`` if given, e.g. 8/32 to get a few sequence-length buckets) and returns
    torch tensors (``input_ids``, ``attention_mask``, ``labels``, ``idx``; drop ``idx`` before the
    model's forward)."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(
        tokenizer, padding="longest", pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
    )
