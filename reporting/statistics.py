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

Each interval carries its actual coverage (``coverage``): 95% for t; P(|T_{n-1}| < 1.96) for the
normal one (87.8% at 5 seeds); the exact order-statistic coverage; unknown (NaN) for the bootstrap,
which under-covers with few seeds. Intervals are clipped to the metric's range (``bounds``).

Seeds whose scores are equal up to rounding (range below ``ZERO_SPREAD``) have no spread: sd 0, a
zero-width interval, and no test (a rounding residue of 1e-16 is not a spread to divide by).

Comparisons test the statistic the table shows: for means Welch's t and TOST on Welch's t; for
medians the Mann-Whitney U test (rank-based, scipy.stats.mannwhitneyu) and TOST as two one-sided
Mann-Whitney tests of the scores shifted by ±margin.
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
BOOTSTRAP_MIN_SEEDS = 30  # below it the report warns that the bootstrap's coverage is below 95%
ZERO_SPREAD = 1e-9        # a range of scores below this (fractions) is rounding, not spread
CI_DESCRIPTION = {
    "t": "95% CI, Student's t: t(0.975, n-1)·sd/√n, sd with ddof = 1",
    "normal": "the SymLoRA paper's normal interval 1.96·sd/√n, sd with ddof = 1 (not 95% with few seeds: "
              "its coverage P(|T(n-1)| < 1.96) is stated per cell)",
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


def no_spread(scores: Iterable[float]) -> bool:
    """Two or more seeds whose scores are equal up to rounding (range below ZERO_SPREAD)."""
    a = _clean(scores)
    return a.size >= 2 and float(np.ptp(a)) < ZERO_SPREAD


def sample_sd(scores: Iterable[float]) -> float:
    a = _clean(scores)
    if a.size < 2:
        return math.nan
    return 0.0 if no_spread(a) else float(np.std(a, ddof=1))


def normal_coverage(n: int) -> float:
    """The true coverage of mean ± 1.96·sd/√n for normal scores: P(|T_{n-1}| < 1.96)."""
    return 2 * float(stats.t.cdf(Z95, n - 1)) - 1 if n >= 2 else math.nan


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
    if no_spread(a):  # no spread: the bootstrap distribution is a point
        return float(a[0]), float(a[0])
    with warnings.catch_warnings():  # tiny samples: scipy warns about degenerate BCa corrections
        warnings.simplefilter("ignore")
        res = stats.bootstrap((a,), np.median if center == "median" else np.mean, method="BCa",
                              n_resamples=n_boot, confidence_level=level, random_state=seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(scores: Iterable[float], ci: str = "t", center: str = "mean", n_total: int | None = None,
              n_failed: int = 0, n_missing: int = 0, n_boot: int = 10000, boot_seed: int = 0,
              bounds: tuple[float, float] | None = None, n_other: dict[str, int] | None = None) -> dict[str, Any]:
    """mean, median, sd, n, the interval with its actual coverage (clipped to ``bounds``, the metric's
    range) and the seed accounting of one setting (``n_other``: further kinds of seeds without a
    score, e.g. {"diverged (NaN)": 1}, named after the failed ones)."""
    if ci not in CI_KINDS:
        raise ValueError(f"ci must be one of {CI_KINDS}, got {ci!r}")
    check_ci(ci, center)
    a = _clean(scores)
    n = int(a.size)
    mean = float(a.mean()) if n else math.nan
    median = float(np.median(a)) if n else math.nan
    value = median if center == "median" else mean
    coverage = 0.95
    zero = no_spread(a)
    if zero:  # identical seeds: a point, no interval to speak of (the note says so)
        lo = hi = value
        hw, coverage = 0.0, math.nan
    elif ci == "bootstrap":
        lo, hi = bootstrap_interval(a, center, n_boot, boot_seed)
        hw, coverage = math.nan, math.nan  # asymmetric: shown as [low, high]; coverage unknown (< 95%)
    elif ci == "order":
        lo, hi, coverage = median_interval(a)
        hw = math.nan
    else:
        hw = normal_half_width(a) if ci == "normal" else t_half_width(a)
        lo, hi = value - hw, value + hw
        if ci == "normal":
            coverage = normal_coverage(n)
    clipped = False
    if bounds is not None and n >= 2 and math.isfinite(lo) and math.isfinite(hi):
        clipped = lo < bounds[0] or hi > bounds[1]
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    n_total = n if n_total is None else int(n_total)
    return {"value": value, "mean": mean, "median": median, "sd": sample_sd(a), "n": n,
            "n_total": n_total, "n_failed": int(n_failed), "n_missing": int(n_missing),
            "half_width": hw, "ci_low": lo, "ci_high": hi, "coverage": coverage if n >= 2 else math.nan,
            "clipped": clipped, "no_spread": zero, "ci": ci, "center": center,
            "n_label": n_label(n, n_total, n_failed, n_missing, n_other)}


def n_label(n: int, n_total: int, n_failed: int = 0, n_missing: int = 0,
            n_other: dict[str, int] | None = None) -> str:
    """'4 of 5, 1 failed': finished seeds with a score of all seeds, failures and missing named;
    ``n_other`` names the failures by kind instead ({"crashed": 1, "diverged (NaN)": 1})."""
    failed = [(k, what) for what, k in n_other.items()] if n_other else [(n_failed, "failed")]
    kinds = [*failed, (n_missing, "missing")]
    return f"{n} of {n_total}" + "".join(f", {k} {what}" for k, what in kinds if k)


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
RANK_TEST = "Mann-Whitney U test (scipy.stats.mannwhitneyu, two-sided; rank-based, for medians)"
RANK_TOST_TEST = "TOST: two one-sided Mann-Whitney U tests of the scores shifted by ±margin"
NO_SPREAD_NOTE = "n/a: no spread (every seed of both has the same score; a test would divide by rounding)"


def _not_testable(x: np.ndarray, y: np.ndarray) -> str | None:
    if x.size < 2 or y.size < 2:
        return "n/a (need >= 2 seeds each)"
    if no_spread(x) and no_spread(y):
        return NO_SPREAD_NOTE
    return None


def _decision(p: float, alpha: float, name: str) -> str:
    if not math.isfinite(p):
        return "n/a"
    return f"{'different' if p < alpha else 'not significantly different'} ({name} p = {p:.3g})"


def welch(a: Iterable[float], b: Iterable[float], alpha: float = 0.05) -> dict[str, Any]:
    """Welch's t over seeds. p < alpha: 'different'; otherwise 'not significantly different' (with a
    few seeds that is low power, not equivalence: see :func:`tost`). No test without spread."""
    x, y = _clean(a), _clean(b)
    why = _not_testable(x, y)
    if why:
        return {"t": math.nan, "df": math.nan, "p": math.nan, "decision": why, "test": WELCH_TEST,
                "alpha": alpha}
    x, y = _denoise(x), _denoise(y)
    with warnings.catch_warnings():  # one group without spread: scipy may warn about precision
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    p = float(res.pvalue)
    return {"t": float(res.statistic), "df": float(getattr(res, "df", math.nan)), "p": p,
            "decision": _decision(p, alpha, "Welch"), "test": WELCH_TEST, "alpha": alpha}


def _denoise(x: np.ndarray) -> np.ndarray:
    """A group without spread as exactly equal scores (its rounding residue is not a variance)."""
    return np.full_like(x, x.mean()) if no_spread(x) else x


def _tost_decision(p: float, alpha: float, shown: str) -> str:
    if not math.isfinite(p):
        return "n/a"
    return (f"equivalent within ±{shown} (TOST p = {p:.3g})" if p < alpha
            else f"equivalence not shown within ±{shown} (TOST p = {p:.3g})")


def tost(a: Iterable[float], b: Iterable[float], margin: float, alpha: float = 0.05,
         margin_label: str | None = None) -> dict[str, Any]:
    """Equivalence of the means within ±``margin`` (same unit as the scores): two one-sided Welch
    tests, H0 mean(a) - mean(b) <= -margin and H0 mean(a) - mean(b) >= +margin; p is the larger of
    the two, and 'equivalent' (the only ground for calling two methods tied) needs p < alpha.
    ``margin_label`` is how the decision names the margin (e.g. '1 point' for scores in %)."""
    x, y = _clean(a), _clean(b)
    why = _not_testable(x, y) or (None if margin and margin > 0 else "n/a")
    if why:
        return {"p": math.nan, "p_lower": math.nan, "p_upper": math.nan, "margin": margin,
                "decision": why, "test": TOST_TEST}
    x, y = _denoise(x), _denoise(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower = stats.ttest_ind(x + margin, y, equal_var=False, alternative="greater")
        upper = stats.ttest_ind(x - margin, y, equal_var=False, alternative="less")
    p = max(float(lower.pvalue), float(upper.pvalue))
    return {"p": p, "p_lower": float(lower.pvalue), "p_upper": float(upper.pvalue), "margin": margin,
            "decision": _tost_decision(p, alpha, margin_label or f"{margin:g}"), "test": TOST_TEST}


def rank_test(a: Iterable[float], b: Iterable[float], alpha: float = 0.05) -> dict[str, Any]:
    """Mann-Whitney U (two-sided; exact without ties): the comparison of two medians' samples."""
    x, y = _clean(a), _clean(b)
    why = _not_testable(x, y)
    if why:
        return {"U": math.nan, "p": math.nan, "decision": why, "test": RANK_TEST, "alpha": alpha}
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    p = float(res.pvalue)
    return {"U": float(res.statistic), "p": p, "decision": _decision(p, alpha, "Mann-Whitney"),
            "test": RANK_TEST, "alpha": alpha}


def rank_tost(a: Iterable[float], b: Iterable[float], margin: float, alpha: float = 0.05,
              margin_label: str | None = None) -> dict[str, Any]:
    """Equivalence of a location shift within ±``margin``: H0 shift <= -margin (Mann-Whitney of
    a + margin against b, 'greater') and H0 shift >= +margin (a - margin against b, 'less')."""
    x, y = _clean(a), _clean(b)
    why = _not_testable(x, y) or (None if margin and margin > 0 else "n/a")
    if why:
        return {"p": math.nan, "p_lower": math.nan, "p_upper": math.nan, "margin": margin,
                "decision": why, "test": RANK_TOST_TEST}
    lower = stats.mannwhitneyu(x + margin, y, alternative="greater")
    upper = stats.mannwhitneyu(x - margin, y, alternative="less")
    p = max(float(lower.pvalue), float(upper.pvalue))
    return {"p": p, "p_lower": float(lower.pvalue), "p_upper": float(upper.pvalue), "margin": margin,
            "decision": _tost_decision(p, alpha, margin_label or f"{margin:g}"), "test": RANK_TOST_TEST}


def compare_groups(a: Iterable[float], b: Iterable[float], center: str, alpha: float, margin: float,
                   margin_label: str | None = None) -> dict[str, Any]:
    """The difference test and the equivalence test of the statistic the table shows (the centre)."""
    if center == "median":
        d, e = rank_test(a, b, alpha), rank_tost(a, b, margin, alpha, margin_label)
        return {"statistic": d["U"], "df": math.nan, "p": d["p"], "decision": d["decision"],
                "test": d["test"], "tost_p": e["p"], "equivalence": e["decision"], "tost_test": e["test"]}
    d, e = welch(a, b, alpha), tost(a, b, margin, alpha, margin_label)
    return {"statistic": d["t"], "df": d["df"], "p": d["p"], "decision": d["decision"], "test": d["test"],
            "tost_p": e["p"], "equivalence": e["decision"], "tost_test": e["test"]}


def difference_interval(a: Iterable[float], b: Iterable[float], center: str = "mean", level: float = 0.95,
                        n_boot: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """(difference, low, high) of centre(a) - centre(b): for means Welch's interval
    (d ± t(df)·se, scipy's ttest_ind(...).confidence_interval); for medians a seeded percentile
    bootstrap of the median difference (each group resampled on its own). NaNs below 2 seeds each;
    a zero-width interval when neither group has spread."""
    x, y = _clean(a), _clean(b)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, math.nan
    f = np.median if center == "median" else np.mean
    d = float(f(x) - f(y))
    if x.size < 2 or y.size < 2:
        return d, math.nan, math.nan
    if no_spread(x) and no_spread(y):
        return d, d, d
    if center == "median":
        rng = np.random.default_rng(seed)
        bx = np.median(rng.choice(x, (n_boot, x.size)), axis=1)
        by = np.median(rng.choice(y, (n_boot, y.size)), axis=1)
        lo, hi = np.quantile(bx - by, [(1 - level) / 2, (1 + level) / 2])
        return d, float(lo), float(hi)
    with warnings.catch_warnings():  # one group without spread: scipy warns about precision
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(_denoise(x), _denoise(y), equal_var=False)
        ci = res.confidence_interval(confidence_level=level)
    return d, float(ci.low), float(ci.high)
