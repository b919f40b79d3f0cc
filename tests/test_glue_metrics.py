"""GLUE metrics == scikit-learn / SciPy (as `evaluate`'s GLUE metric), hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from glue.metrics import compute_eval_metrics, compute_metrics
from glue.tasks import TASK_NAMES, get_task


@pytest.mark.parametrize("task", TASK_NAMES)
def test_random_predictions_match_reference(task):
    spec = get_task(task)
    rng = np.random.default_rng(0)
    n = 257
    if spec.is_regression:
        y = rng.uniform(0, 5, n)
        p = y + rng.normal(0, 1.5, n)
        m = compute_metrics(task, p, y)
        assert m == {"pearson": pytest.approx(pearsonr(p, y)[0], abs=1e-12),
                     "spearman": pytest.approx(spearmanr(p, y)[0], abs=1e-12)}
        assert all(type(v) is float for v in m.values())
        return
    y = rng.integers(0, spec.num_labels, n)
    p = rng.integers(0, spec.num_labels, n)
    m = compute_metrics(task, p.tolist(), y.tolist())
    assert set(m) == set(spec.metrics)
    assert all(type(v) is float for v in m.values())
    if task in ("cola", "ax"):  # the GLUE server scores AX with Matthews' correlation too
        assert m["matthews"] == pytest.approx(matthews_corrcoef(y, p), abs=1e-12)
    else:
        assert m["accuracy"] == pytest.approx(float((p == y).mean()), abs=1e-12)
    if task in ("mrpc", "qqp"):
        assert m["f1"] == pytest.approx(f1_score(y, p), abs=1e-12)


def test_hand_computed_confusion_matrix():
    # labels 1 1 1 0 0 0 0 ; predictions 1 1 0 1 0 0 0 -> TP 2, FN 1, FP 1, TN 3
    y = [1, 1, 1, 0, 0, 0, 0]
    p = [1, 1, 0, 1, 0, 0, 0]
    tp, fn, fp, tn = 2, 1, 1, 3
    mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert mcc == pytest.approx(5 / 12)
    assert compute_metrics("cola", p, y) == {"matthews": pytest.approx(5 / 12)}
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert compute_metrics("mrpc", p, y) == {"accuracy": pytest.approx(5 / 7),
                                             "f1": pytest.approx(f1)}
    assert f1 == pytest.approx(2 / 3)
    assert compute_metrics("qqp", p, y)["f1"] == pytest.approx(2 / 3)
    assert compute_metrics("rte", p, y) == {"accuracy": pytest.approx(5 / 7)}


def test_stsb_hand_cases():
    assert compute_metrics("stsb", [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(
        {"pearson": 1.0, "spearman": 1.0})
    m = compute_metrics("stsb", [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])
    assert m == pytest.approx({"pearson": -1.0, "spearman": -1.0})
    # monotone but not linear: spearman 1, pearson < 1
    m = compute_metrics("stsb", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 40.0])
    assert m["spearman"] == pytest.approx(1.0) and m["pearson"] < 0.9
    # (n, 1) regression outputs are accepted
    assert compute_metrics("stsb", np.array([[1.0], [2.0], [3.0]]), [1, 2, 4])["spearman"] == \
        pytest.approx(1.0)


def test_logits_argmax_and_mnli_suffixes():
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    y = [0, 1, 1, 0]
    assert compute_metrics("mnli", logits, y) == {"accuracy": 0.75}
    out = compute_eval_metrics("mnli", {"validation_matched": (logits, y),
                                        "validation_mismatched": ([0, 0, 0, 0], y)})
    assert out == {"accuracy_matched": 0.75, "accuracy_mismatched": 0.5}
    assert set(out) == set(get_task("mnli").metric_keys)
    assert get_task("mnli").main_metric in out
    out = compute_eval_metrics("mrpc", {"validation": ([1, 0], [1, 1])})
    assert out == {"accuracy": 0.5, "f1": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="validation_matched"):
        compute_eval_metrics("mnli", {"validation": ([0], [0])})


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        compute_metrics("rte", [0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="columns"):
        compute_metrics("rte", np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="known tasks"):
        compute_metrics("nope", [0], [0])
