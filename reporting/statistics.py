"""Aggregation over seeds, 95% intervals, the Bernoulli test half-width and Welch's comparison.

Every function takes and returns fractions (or whatever unit it is given); no percentages here.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
from scipy import stats

from .tasks import NON_BERNOULLI, TEST_SIZE, main_metric

Z95 = 1.96  # the SymLoRA paper's factor (1.96 * sd / sqrt(n))
CI_KINDS = ("t", "normal", "bootstrap")
CI_DESCRIPTION = {
    "t": "95% CI, Student's t: t(0.975, n-1) * sd / sqrt(n), sd with ddof=1",
    "normal": "95% CI, normal: 1.96 * sd / sqrt(n), sd with ddof=1 (the SymLoRA paper)",
    "bootstrap": "95% CI, percentile bootstrap of the {center} over seeds (seeded)",
}


def _clean(scores: Iterable[float]) -> np.ndarray:
    a = np.asarray([float(s) for s in scores if s is not None], dtype=float)
    return a[np.isfinite(a)]


def sample_sd(scores: Iterable[float]) -> float:
    a = _clean(scores)
    return float(np.std(a, ddof=1)) if a.size >= 2 else math.nan


def normal_half_width(scores: Iterable[float]) -> float:
    a = _clean(scores)
    return Z95 * sample_sd(a) / math.sqrt(a.size) if a.size >= 2 else math.nan


def t_half_width(scores: Iterable[float], level: float = 0.95) -> float:
    a = _clean(scores)
    if a.size < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, a.size - 1)) * sample_sd(a) / math.sqrt(a.size)


def bootstrap_interval(scores: Iterable[float], center: str = "mean", n_boot: int = 10000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (or median) over seeds, with a seeded generator."""
    a = _clean(scores)
    if a.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    samples = a[rng.integers(0, a.size, size=(n_boot, a.size))]
    stat = np.median(samples, axis=1) if center == "median" else samples.mean(axis=1)
    lo, hi = np.quantile(stat, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def summarize(scores: Iterable[float], ci: str = "t", center: str = "mean", n_total: int | None = None,
              n_failed: int = 0, n_missing: int = 0, n_boot: int = 10000, boot_seed: int = 0) -> dict[str, Any]:
    """mean, median, sd, n, the 95% interval and the seed accounting of one setting."""
    if ci not in CI_KINDS:
        raise ValueError(f"ci must be one of {CI_KINDS}, got {ci!r}")
    a = _clean(scores)
    n = int(a.size)
    mean = float(a.mean()) if n else math.nan
    median = float(np.median(a)) if n else math.nan
    value = median if center == "median" else mean
    if ci == "bootstrap":
        lo, hi = bootstrap_interval(a, center, n_boot, boot_seed)
        hw = (hi - lo) / 2 if n >= 2 else math.nan
    else:
        hw = normal_half_width(a) if ci == "normal" else t_half_width(a)
        lo, hi = value - hw, value + hw
    n_total = n if n_total is None else int(n_total)
    return {"value": value, "mean": mean, "median": median, "sd": sample_sd(a), "n": n,
            "n_total": n_total, "n_failed": int(n_failed), "n_missing": int(n_missing),
            "half_width": hw, "ci_low": lo, "ci_high": hi, "ci": ci, "center": center,
            "n_label": f"{n} of {n_total}"}


def bernoulli_half_width(p: float, n: int) -> float:
    """1.96 * sqrt(p (1 - p) / n) for an accuracy p (fraction) over n test examples."""
    return Z95 * math.sqrt(p * (1 - p) / n)


def test_half_width(task: str, p: float, metric: str | None = None) -> float | None:
    """The Bernoulli half-width with the official test-set size; None ("–") for Matthews/Pearson."""
    metric = metric or main_metric(task)
    if metric in NON_BERNOULLI or task not in TEST_SIZE or p is None or not math.isfinite(p):
        return None
    return bernoulli_half_width(p, TEST_SIZE[task])


def intervals_overlap(lo1: float, hi1: float, lo2: float, hi2: float) -> bool | None:
    if any(x is None or not math.isfinite(x) for x in (lo1, hi1, lo2, hi2)):
        return None
    return bool(lo1 <= hi2 and lo2 <= hi1)


WELCH_TEST = "Welch's t-test (scipy.stats.ttest_ind, equal_var=False, two-sided)"


def welch(a: Iterable[float], b: Iterable[float], alpha: float = 0.05) -> dict[str, Any]:
    """Welch's t over seeds; 'tied' when p >= alpha, 'different' when p < alpha."""
    x, y = _clean(a), _clean(b)
    if x.size < 2 or y.size < 2:
        return {"t": math.nan, "df": math.nan, "p": math.nan, "decision": "n/a (need >= 2 seeds each)",
                "test": WELCH_TEST, "alpha": alpha}
    import warnings

    with warnings.catch_warnings():  # identical seeds: scipy warns about precision, p is nan or exact
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    p = float(res.pvalue)
    df = float(getattr(res, "df", math.nan))
    decision = "n/a" if not math.isfinite(p) else ("different" if p < alpha else "tied")
    return {"t": float(res.statistic), "df": df, "p": p, "decision": decision, "test": WELCH_TEST,
            "alpha": alpha}
