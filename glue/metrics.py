"""GLUE metrics, computed with scikit-learn and SciPy exactly as the GLUE metric of the
``evaluate`` library does (which cannot be used offline: it downloads its script at run time).

Keys: each task's ``TaskSpec.metrics``: ``matthews`` (CoLA; AX, as the server scores it),
``pearson`` / ``spearman`` (STS-B), ``accuracy`` and ``f1`` (MRPC, QQP), ``accuracy`` (the others).
:func:`compute_eval_metrics` adds the split suffix of the task (MNLI: ``accuracy_matched``,
``accuracy_mismatched``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .tasks import TaskSpec, get_task

__all__ = ["compute_metrics", "compute_eval_metrics", "to_predictions"]


def to_predictions(task: str | TaskSpec, predictions) -> np.ndarray:
    """Class ids (int64) or STS-B scores (float64) from ids, scores or logits.

    2-D input is treated as logits: argmax for classification, the single column for STS-B.
    """
    spec = get_task(task)
    p = np.asarray(predictions)
    if spec.is_regression:
        p = p.astype(np.float64)
        if p.ndim == 2 and p.shape[1] == 1:
            p = p[:, 0]
        if p.ndim != 1:
            raise ValueError(f"STS-B predictions must be 1-D scores, got shape {p.shape}")
        return p
    if p.ndim == 2:
        if p.shape[1] != spec.num_labels:
            raise ValueError(
                f"{spec.name} logits must have {spec.num_labels} columns, got shape {p.shape}"
            )
        return p.argmax(axis=1).astype(np.int64)
    if p.ndim != 1:
        raise ValueError(f"predictions must be 1-D class ids or 2-D logits, got shape {p.shape}")
    if p.dtype.kind == "f":
        if not np.all(np.equal(np.mod(p, 1), 0)):
            raise ValueError(f"{spec.name} predictions must be class ids, got non-integer floats")
    return p.astype(np.int64)


def _metric_functions():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score, matthews_corrcoef

    return {
        "accuracy": lambda p, y: (p == y).mean(),
        "f1": lambda p, y: f1_score(y_true=y, y_pred=p),
        "matthews": lambda p, y: matthews_corrcoef(y, p),
        "pearson": lambda p, y: pearsonr(p, y)[0],
        "spearman": lambda p, y: spearmanr(p, y)[0],
    }


def compute_metrics(task: str | TaskSpec, predictions, labels) -> dict[str, float]:
    """Metrics of one split, the task's :attr:`TaskSpec.metrics`: ``{"accuracy": ...}``,
    ``{"matthews": ...}``, ``{"pearson": ..., "spearman": ...}`` or ``{"accuracy": ..., "f1": ...}``
    (python floats)."""
    spec = get_task(task)
    preds = to_predictions(spec, predictions)
    refs = np.asarray(labels)
    refs = refs.astype(np.float64) if spec.is_regression else refs.astype(np.int64)
    if preds.shape != refs.shape:
        raise ValueError(
            f"{spec.name}: {preds.shape[0]} predictions but {refs.shape[0]} labels"
        )
    if preds.size == 0:
        raise ValueError(f"{spec.name}: no predictions")
    functions = _metric_functions()
    return {name: float(functions[name](preds, refs)) for name in spec.metrics}


def compute_eval_metrics(
    task: str | TaskSpec, results: Mapping[str, tuple]
) -> dict[str, float]:
    """Metrics of all validation splits of a task with their key suffixes.

    ``results`` maps a Hub validation split name to ``(predictions, labels)``; e.g. for MNLI
    ``{"validation_matched": (p, y), "validation_mismatched": (p2, y2)}`` ->
    ``{"accuracy_matched": ..., "accuracy_mismatched": ...}``.
    """
    spec = get_task(task)
    out: dict[str, float] = {}
    for split, (preds, labels) in results.items():
        suffix = spec.eval_suffix(split)
        for k, v in compute_metrics(spec, preds, labels).items():
            out[k + suffix] = v
    return out
