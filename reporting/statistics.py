"""Aggregation over seeds, 95% intervals, the Bernoulli test half-width, Welch's comparison and the
TOST equivalence test.

Every function takes and returns fractions (or whatever unit it is given); no percentages here.

Intervals (``ci``), each for the centre it belongs to:
  t          mean ± t(0.975, n-1)·sd/√n (sd with ddof = 1): the right one for a few seeds
  normal     mean ± 1.96·sd/√n: the SymLoRA paper's, too narrow for a few seeds
  bootstrap  BCa bootstrap (scipy.stats.bootstrap) of the mean or the median; below 10 seeds every
             bootstrap under-covers (a percentile bootstrap over 5 seeds covers about 85%, not 95%),
             so the report warns
  order      distribution-free interval of the median from order statistics [x(k), x(n+1-k)], with
             its exact coverage 1 - 2·P(Binom(n, 1/2) <= k-1); 5 seeds can reach 93.75% at most
A median centre takes ``order`` or ``bootstrap``, never the mean's t or normal half-width.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Iterable

import numpy as np
from scipy import stats

from .tasks import NON_BERNOULLI, TEST_SIZE, main_metric

Z95 = 1.96  # the SymLoRA paper's factor (1.96 * sd / sqrt(n))
CI_KINDS = ("t", "normal", "bootstrap", "order")
MEAN_CI = ("t", "normal", "bootstrap")
MEDIAN_CI = ("order", "bootstrap")
BOOTSTRAP_MIN_SEEDS = 10
CI_DESCRIPTION = {
    "t": "95% CI, Student's t: t(0.975, n-1)·sd/√n, sd with ddof = 1",
    "normal": "95% CI, normal: 1.96·sd/√n, sd with ddof = 1 (the SymLoRA paper's)",
    "bootstrap": "95% BCa bootstrap interval of the {center} over seeds (scipy.stats.bootstrap, seeded)",
    "order": "distribution-free interval of the median from order statistics (coverage as stated)",
}


def _clean(scores: Iterable[float]) -> np.ndarray:
    a = np.asarray([float(s) for s in scores if s is not None], dtype=float)
    return a[np.isfinite(a)]


def check_ci(ci: str, center: str) -> None:
    """A clear error for an interval that does not belong to the centre."""
    if center not in ("mean", "median"):
        raise ValueError(f"center must be mean or median, got {center!r}")
    allowed = MEDIAN_CI if center == "median" else MEAN_CI
    if ci not in allowed:
        raise ValueError(f"ci={ci!r} is not an interval of the {center}: choose one of {allowed}"
                         + (" (the t and normal half-widths are the mean's)" if center == "median" else ""))


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


def median_interval(scores: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """(low, high, coverage): the narrowest order-statistic interval [x(k), x(n+1-k)] whose exact
    coverage reaches ``level``; when none does (n <= 5 at 95%), [min, max] with its own coverage."""
    a = np.sort(_clean(scores))
    n = a.size
    if n < 2:
        return math.nan, math.nan, math.nan
    coverage = lambda k: 1 - 2 * float(stats.binom.cdf(k - 1, n, 0.5))  # noqa: E731
    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= level:
        k += 1
    return float(a[k - 1]), float(a[n - k]), coverage(k)


def bootstrap_interval(scores: Iterable[float], center: str = "mean", n_boot: int = 10000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """BCa bootstrap interval of the mean (or median) over seeds (scipy.stats.bootstrap, seeded)."""
    a = _clean(scores)
    if a.size < 2:
        return math.nan, math.nan
    if np.all(a == a[0]):  # no spread: the bootstrap distribution is a point
        return float(a[0]), float(a[0])
    with warnings.catch_warnings():  # tiny samples: scipy warns about degenerate BCa corrections
        warnings.simplefilter("ignore")
        res = stats.bootstrap((a,), np.median if center == "median" else np.mean, method="BCa",
                              n_resamples=n_boot, confidence_level=level, random_state=seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(scores: Iterable[float], ci: str = "t", center: str = "mean", n_total: int | None = None,
              n_failed: int = 0, n_missing: int = 0, n_boot: int = 10000, boot_seed: int = 0) -> dict[str, Any]:
    """mean, median, sd, n, the 95% interval and the seed accounting of one setting."""
    if ci not in CI_KINDS:
        raise ValueError(f"ci must be one of {CI_KINDS}, got {ci!r}")
    check_ci(ci, center)
    a = _clean(scores)
    n = int(a.size)
    mean = float(a.mean()) if n else math.nan
    median = float(np.median(a)) if n else math.nan
    value = median if center == "median" else mean
    coverage = 0.95
    if ci == "bootstrap":
        lo, hi = bootstrap_interval(a, center, n_boot, boot_seed)
        hw = math.nan  # asymmetric: shown as [low, high]
    elif ci == "order":
        lo, hi, coverage = median_interval(a)
        hw = math.nan
    else:
        hw = normal_half_width(a) if ci == "normal" else t_half_width(a)
        lo, hi = value - hw, value + hw
    n_total = n if n_total is None else int(n_total)
    return {"value": value, "mean": mean, "median": median, "sd": sample_sd(a), "n": n,
            "n_total": n_total, "n_failed": int(n_failed), "n_missing": int(n_missing),
            "half_width": hw, "ci_low": lo, "ci_high": hi, "coverage": coverage if n >= 2 else math.nan,
            "ci": ci, "center": center, "n_label": n_label(n, n_total, n_failed, n_missing)}


def n_label(n: int, n_total: int, n_failed: int = 0, n_missing: int = 0) -> str:
    """'4 of 5, 1 failed': finished seeds with a score of all seeds, failures and missing named."""
    extra = [f"{k} {what}" for k, what in ((n_failed, "failed"), (n_missing, "missing")) if k]
    return f"{n} of {n_total}" + "".join(f", {e}" for e in extra)


def bernoulli_half_width(p: float, n: int) -> float:
    """1.96 * sqrt(p (1 - p) / n) for an accuracy p (fraction) over n test examples."""
    return Z95 * math.sqrt(p * (1 - p) / n)


def test_half_width(task: str, p: float, metric: str | None = None, n: int | None = None) -> float | None:
    """The Bernoulli half-width over ``n`` test examples (default: the task's official test-set size);
    None ("–") for Matthews/Pearson."""
    metric = metric or main_metric(task)
    n = n if n is not None else TEST_SIZE.get(task)
    if metric in NON_BERNOULLI or n is None or p is None or not math.isfinite(p):
        return None
    return bernoulli_half_width(p, n)


def intervals_overlap(lo1: float, hi1: float, lo2: float, hi2: float) -> bool | None:
    if any(x is None or not math.isfinite(x) for x in (lo1, hi1, lo2, hi2)):
        return None
    return bool(lo1 <= hi2 and lo2 <= hi1)


WELCH_TEST = "Welch's t-test (scipy.stats.ttest_ind, equal_var=False, two-sided)"
TOST_TEST = "TOST: two one-sided Welch t-tests against ±margin"


def welch(a: Iterable[float], b: Iterable[float], alpha: float = 0.05) -> dict[str, Any]:
    """Welch's t over seeds. p < alpha: 'different'; otherwise 'not significantly different' (with a
    few seeds that is low power, not equivalence: see :func:`tost`)."""
    x, y = _clean(a), _clean(b)
    if x.size < 2 or y.size < 2:
        return {"t": math.nan, "df": math.nan, "p": math.nan, "decision": "n/a (need >= 2 seeds each)",
                "test": WELCH_TEST, "alpha": alpha}
    with warnings.catch_warnings():  # identical seeds: scipy warns about precision, p is nan or exact
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    p = float(res.pvalue)
    df = float(getattr(res, "df", math.nan))
    if not math.isfinite(p):
        decision = "n/a"
    else:
        decision = f"{'different' if p < alpha else 'not significantly different'} (Welch p = {p:.3g})"
    return {"t": float(res.statistic), "df": df, "p": p, "decision": decision, "test": WELCH_TEST,
            "alpha": alpha}


def tost(a: Iterable[float], b: Iterable[float], margin: float, alpha: float = 0.05,
         margin_label: str | None = None) -> dict[str, Any]:
    """Equivalence of the means within ±``margin`` (same unit as the scores): two one-sided Welch
    tests, H0 mean(a) - mean(b) <= -margin and H0 mean(a) - mean(b) >= +margin; p is the larger of
    the two, and 'equivalent' (the only ground for calling two methods tied) needs p < alpha.
    ``margin_label`` is how the decision names the margin (e.g. '1 point' for scores in %)."""
    x, y = _clean(a), _clean(b)
    if x.size < 2 or y.size < 2 or not margin or margin <= 0:
        return {"p": math.nan, "p_lower": math.nan, "p_upper": math.nan, "margin": margin,
                "decision": "n/a", "test": TOST_TEST}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = stats.ttest_ind(x + margin, y, equal_var=False, alternative="greater")
        upper = stats.ttest_ind(x - margin, y, equal_var=False, alternative="less")
    p = max(float(lower.pvalue), float(upper.pvalue))
    shown = margin_label or f"{margin:g}"
    decision = "n/a" if not math.isfinite(p) else (
        f"equivalent within ±{shown} (TOST p = {p:.3g})" if p < alpha
        else f"equivalence not shown within ±{shown} (TOST p = {p:.3g})")
    return {"p": p, "p_lower": float(lower.pvalue), "p_upper": float(upper.pvalue), "margin": margin,
            "decision": decision, "test": TOST_TEST}
