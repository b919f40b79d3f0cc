"""The report's statistics against SciPy or a hand computation: sd, t and normal half-widths, the
order-statistic interval of the median, the BCa bootstrap, Bernoulli test half-widths, Welch and TOST."""
import math

import numpy as np
import pytest
from scipy import stats

from reporting import statistics as st

SCORES = [0.80, 0.82, 0.84, 0.86, 0.88]


def test_sd_normal_and_t_half_widths_by_hand():
    mean = sum(SCORES) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in SCORES) / 4)  # ddof = 1
    assert sd == pytest.approx(0.0316228, abs=1e-7)
    assert st.sample_sd(SCORES) == pytest.approx(sd, rel=1e-12)
    assert st.normal_half_width(SCORES) == pytest.approx(1.96 * 0.0316228 / math.sqrt(5), abs=1e-7)
    assert st.t_half_width(SCORES) == pytest.approx(2.776445 * 0.0316228 / math.sqrt(5), abs=1e-6)
    s = st.summarize(SCORES, ci="t")
    assert (s["n"], s["mean"], s["median"]) == (5, pytest.approx(0.84), pytest.approx(0.84))
    assert s["ci_low"] == pytest.approx(0.84 - 2.776445 * 0.0316228 / math.sqrt(5), abs=1e-6)


def test_median_interval_from_order_statistics_by_hand():
    # 5 seeds: no order-statistic interval reaches 95%; [min, max] covers 1 - 2/32 = 93.75%
    lo, hi, cov = st.median_interval([0.84, 0.80, 0.88, 0.82, 0.86])
    assert (lo, hi, cov) == (0.80, 0.88, pytest.approx(1 - 2 / 32))
    # 10 seeds: [x(2), x(9)] covers 1 - 2·P(B <= 1) = 1 - 2·11/1024 = 97.85%; [x(3), x(8)] only 89.06%
    x = list(range(10))
    lo, hi, cov = st.median_interval(x)
    assert (lo, hi) == (1, 8) and cov == pytest.approx(1 - 2 * 11 / 1024)
    # ... and [x(3), x(8)] is taken once the level asks no more than its 89.06% (the narrowest that reaches it)
    lo, hi, cov = st.median_interval(x, level=0.89)
    assert (lo, hi) == (2, 7) and cov == pytest.approx(1 - 2 * 56 / 1024)
    # 20 seeds: k = 6 (P(B <= 5) = 0.0207), k = 7 fails (P(B <= 6) = 0.0577)
    lo, hi, cov = st.median_interval(list(range(20)))
    assert (lo, hi) == (5, 14) and cov == pytest.approx(1 - 2 * stats.binom.cdf(5, 20, 0.5))
    s = st.summarize(SCORES, ci="order", center="median")
    assert (s["value"], s["ci_low"], s["ci_high"], s["coverage"]) == (0.84, 0.80, 0.88, pytest.approx(0.9375))
    assert all(math.isnan(v) for v in st.median_interval([0.8]))


def test_a_median_never_takes_the_means_half_width():
    with pytest.raises(ValueError, match="not an interval of the median"):
        st.summarize(SCORES, ci="t", center="median")
    with pytest.raises(ValueError, match="not an interval of the mean"):
        st.summarize(SCORES, ci="order", center="mean")


def test_bootstrap_is_scipys_bca_and_seeded():
    lo, hi = st.bootstrap_interval(SCORES, "mean", n_boot=2000, seed=3)
    ref = stats.bootstrap((np.array(SCORES),), np.mean, method="BCa", n_resamples=2000, random_state=3)
    assert (lo, hi) == (pytest.approx(ref.confidence_interval.low), pytest.approx(ref.confidence_interval.high))
    a = st.summarize(SCORES, ci="bootstrap", boot_seed=3, n_boot=2000)
    assert (a["ci_low"], a["ci_high"]) == (lo, hi) and 0.80 <= lo < 0.84 < hi <= 0.88
    med = st.summarize(SCORES, ci="bootstrap", center="median", boot_seed=3, n_boot=2000)
    ref = stats.bootstrap((np.array(SCORES),), np.median, method="BCa", n_resamples=2000, random_state=3)
    assert med["ci_low"] == pytest.approx(ref.confidence_interval.low)
    assert st.bootstrap_interval([0.8, 0.8, 0.8]) == (0.8, 0.8)


def test_bernoulli_half_width_and_dash_for_correlations():
    assert st.bernoulli_half_width(0.9, 1821) == pytest.approx(1.96 * math.sqrt(0.9 * 0.1 / 1821), rel=1e-12)
    assert st.test_half_width("sst2", 0.9) == pytest.approx(0.0137791, abs=1e-7)
    assert st.test_half_width("rte", 0.78) == pytest.approx(1.96 * math.sqrt(0.78 * 0.22 / 3000), rel=1e-12)
    assert st.test_half_width("cola", 0.6) is None and st.test_half_width("stsb", 0.88) is None
    # MNLI: the SymLoRA paper's ±0.5 at 86% is the pooled n; matched alone gives ±0.7
    assert round(100 * st.test_half_width("mnli", 0.86, n=9796 + 9847), 1) == 0.5
    assert round(100 * st.test_half_width("mnli", 0.86), 1) == 0.7


def test_welch_equals_scipy_and_a_hand_computation():
    a, b = [0.80, 0.82, 0.84, 0.86, 0.88], [0.70, 0.72, 0.71, 0.73, 0.69]
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 5
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 4)
    w = st.welch(a, b)
    assert w["t"] == pytest.approx(t) and w["df"] == pytest.approx(df)
    assert w["p"] == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert w["decision"] == f"different (Welch p = {w['p']:.3g})"
    c = [0.81, 0.85, 0.83, 0.87, 0.84]
    assert st.welch(a, c)["decision"].startswith("not significantly different (Welch p = ")
    assert st.intervals_overlap(0.1, 0.3, 0.25, 0.4) and not st.intervals_overlap(0.1, 0.2, 0.25, 0.4)


def test_tost_by_hand_and_against_scipys_one_sided_tests():
    a, b = [0.840, 0.842, 0.838, 0.841, 0.839], [0.839, 0.841, 0.840, 0.838, 0.842]
    margin = 0.01
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 5
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 4)
    d = np.mean(a) - np.mean(b)
    p_lower = stats.t.sf((d + margin) / se, df)   # H0: d <= -margin
    p_upper = stats.t.cdf((d - margin) / se, df)  # H0: d >= +margin
    e = st.tost(a, b, margin)
    assert e["p_lower"] == pytest.approx(p_lower) and e["p_upper"] == pytest.approx(p_upper)
    assert e["p"] == pytest.approx(max(p_lower, p_upper)) and e["decision"].startswith("equivalent within ±0.01")
    wide = st.tost([0.80, 0.86, 0.83, 0.88, 0.79], [0.81, 0.85, 0.84, 0.87, 0.80], 0.01)
    assert wide["decision"].startswith("equivalence not shown")
    ref = stats.ttest_ind(np.array(a) - margin, b, equal_var=False, alternative="less")
    assert e["p_upper"] == pytest.approx(ref.pvalue)


def test_n_label_names_failed_and_missing():
    assert st.n_label(4, 5, 1, 0) == "4 of 5, 1 failed"
    assert st.n_label(0, 3, 3, 0) == "0 of 3, 3 failed"
    assert st.n_label(3, 5, 1, 1) == "3 of 5, 1 failed, 1 missing"


# ------------------------------------------------------------------ small samples and zero spread
@pytest.mark.parametrize("n, expected", [(2, 0.70), (3, 0.811), (5, 0.878)])
def test_normal_interval_coverage_is_p_abs_t_below_1_96(n, expected):
    """The paper's 1.96·sd/√n covers P(|T_{n-1}| < 1.96): 70% at 2 seeds, 81% at 3, 87.8% at 5."""
    assert st.normal_coverage(n) == pytest.approx(stats.t.cdf(1.96, n - 1) - stats.t.cdf(-1.96, n - 1))
    assert st.normal_coverage(n) == pytest.approx(expected, abs=1e-3)
    s = st.summarize([0.80, 0.82, 0.84, 0.86, 0.88][:n], ci="normal")
    assert s["coverage"] == pytest.approx(st.normal_coverage(n))
    assert st.summarize([0.80, 0.82, 0.84][:n], ci="t")["coverage"] == 0.95


def test_order_interval_coverage_per_cell():
    assert st.summarize([0.8, 0.9], ci="order", center="median")["coverage"] == pytest.approx(0.5)  # 1 - 2/4
    assert st.summarize([0.8, 0.9, 0.85], ci="order", center="median")["coverage"] == pytest.approx(0.75)


def test_interval_is_clipped_to_the_metric_range():
    # 2 seeds at 0.90 and 0.94: t half-width 12.706·0.02828/√2 = 0.254 -> [0.666, 1.174], clipped at 1
    s = st.summarize([0.90, 0.94], ci="t", bounds=(0.0, 1.0))
    hw = stats.t.ppf(0.975, 1) * np.std([0.90, 0.94], ddof=1) / math.sqrt(2)
    assert s["ci_low"] == pytest.approx(0.92 - hw) and s["ci_high"] == 1.0 and s["clipped"]
    assert not st.summarize([0.90, 0.91, 0.92], ci="t", bounds=(0.0, 1.0))["clipped"]


def test_identical_seeds_are_not_a_spread_and_get_no_test():
    a, b = [0.94] * 5, [0.95] * 5
    raw = np.std(np.array([0.1 + 0.2, 0.3, 0.3]), ddof=1)  # the rounding residue the check must ignore
    assert 0 < raw < 1e-15 and st.no_spread([0.1 + 0.2, 0.3, 0.3])
    s = st.summarize([0.1 + 0.2, 0.3, 0.3], ci="t")
    assert s["sd"] == 0.0 and s["half_width"] == 0.0 and s["no_spread"] and math.isnan(s["coverage"])
    for result in (st.welch(a, b), st.tost(a, b, 0.01), st.rank_test(a, b), st.rank_tost(a, b, 0.01)):
        assert math.isnan(result["p"]) and result["decision"] == st.NO_SPREAD_NOTE
    # two seeds each, no spread: no "equivalent (TOST p = 0)"
    c = st.compare_groups([0.5, 0.5], [0.5, 0.5], "mean", 0.05, 0.01)
    assert c["equivalence"] == st.NO_SPREAD_NOTE and c["decision"] == st.NO_SPREAD_NOTE
    # one group without spread against one with: Welch is the one-sample t of the other group
    x, y = [0.90] * 3, [0.88, 0.90, 0.95]
    w = st.welch(x, y)
    ref = stats.ttest_1samp(y, 0.90)
    assert abs(w["t"]) == pytest.approx(abs(ref.statistic)) and w["p"] == pytest.approx(ref.pvalue)


# ------------------------------------------------------------------ medians: a rank-based comparison
def test_median_comparison_is_mann_whitney_against_scipy():
    # the MRPC case: medians differ by +0.30 while the means go the other way
    a = [0.880, 0.881, 0.885, 0.886, 0.800]
    b = [0.870, 0.875, 0.878, 0.890, 0.895]
    assert np.median(a) - np.median(b) == pytest.approx(0.003) and np.mean(a) < np.mean(b)
    c = st.compare_groups(a, b, "median", 0.05, 0.01)
    ref = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert c["p"] == pytest.approx(ref.pvalue) and c["statistic"] == ref.statistic
    assert c["test"] == st.RANK_TEST and "Mann-Whitney p" in c["decision"]
    # exact p by hand for complete separation at 5 vs 5: 2 / C(10, 5) = 2/252
    sep = st.rank_test([0.90, 0.91, 0.92, 0.93, 0.94], [0.8, 0.81, 0.82, 0.83, 0.84])
    assert sep["p"] == pytest.approx(2 / 252)


def test_median_tost_is_two_shifted_one_sided_mann_whitney_tests():
    a = [0.840, 0.842, 0.838, 0.841, 0.839]
    b = [0.8395, 0.8415, 0.8405, 0.8385, 0.8425]
    e = st.rank_tost(a, b, 0.01)
    lower = stats.mannwhitneyu(np.array(a) + 0.01, b, alternative="greater").pvalue
    upper = stats.mannwhitneyu(np.array(a) - 0.01, b, alternative="less").pvalue
    assert (e["p_lower"], e["p_upper"]) == (pytest.approx(lower), pytest.approx(upper))
    assert e["p"] == pytest.approx(max(lower, upper)) and e["p"] == pytest.approx(1 / 252)
    assert e["decision"].startswith("equivalent within")
    m = st.compare_groups(a, b, "mean", 0.05, 0.01)
    assert m["test"] == st.WELCH_TEST and m["tost_p"] == pytest.approx(st.tost(a, b, 0.01)["p"])
