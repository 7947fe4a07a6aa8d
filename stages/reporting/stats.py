"""The report's statistics, on SciPy's tests (`scipy.stats`), as pure functions.

- `wilson_interval`: the 95% Wilson score interval of an accuracy on n test images.
- `mcnemar_exact`: McNemar's exact test for two models scored on the same images: of the images
  exactly one model gets right, under "equally good" each is the first model's with probability
  1/2, so the two-sided p-value is an exact binomial test on the discordant counts.
- `welch`: across seeds, Welch's t-test (unequal variances) on one value per seed and model;
  `permutation_test`, the exact test where no side has spread; `tost`, the equivalence test;
  `holm`, the multiple-comparison adjustment. What the seeds can show is simulated in `power.py`.
- Runs that failed to learn, as their own outcome: `clopper_pearson`, the exact interval of a
  failure rate; `failure_test`, Boschloo's or Fisher's exact test of two failure rates;
  `majority_test`, the exact binomial test that a model fails in most of its runs.
- Across seeds, one p per seed: `combine_p` (Stouffer's or Fisher's method); `below_bound`, the
  one-sided t-test that a per-seed measure's mean lies below a declared bound.

SciPy is used rather than our own code because its binomial and t distributions are exact and
well tested; these wrappers only fix the conventions (two-sided, what counts as "no data").
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import statistics
from collections.abc import Sequence

import numpy as np
from scipy import stats


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion `correct / total`."""
    if total <= 0:
        raise ValueError("an interval needs at least one image")
    interval = stats.binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


@dataclasses.dataclass(frozen=True)
class McNemar:
    only_first: int  # images the first model gets right and the second wrong
    only_second: int  # images the second model gets right and the first wrong
    p_value: float


def mcnemar_exact(first_correct: np.ndarray, second_correct: np.ndarray) -> McNemar:
    """McNemar's exact two-sided test from two models' per-image right/wrong on the same images."""
    first = np.asarray(first_correct, dtype=bool)
    second = np.asarray(second_correct, dtype=bool)
    if first.shape != second.shape:
        raise ValueError(f"the two models were scored on different images ({first.shape} vs {second.shape})")
    only_first = int(np.sum(first & ~second))
    only_second = int(np.sum(~first & second))
    discordant = only_first + only_second
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(only_first, discordant, 0.5).pvalue)
    return McNemar(only_first, only_second, min(p_value, 1.0))


@dataclasses.dataclass(frozen=True)
class Spread:
    """One value per seed, summarised."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        """NaN without values (a model none of whose runs trained)."""
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def sd(self) -> float:
        """Sample standard deviation (n - 1); NaN for fewer than two seeds."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def low(self) -> float:
        return min(self.values, default=math.nan)

    @property
    def high(self) -> float:
        return max(self.values, default=math.nan)


def welch_defined(first: Sequence[float], second: Sequence[float]) -> bool:
    """Whether Welch's test is defined: two seeds or more on each side, and spread on at least one.
    The one place this is checked; without spread on either side the values themselves say
    whether they differ, and `mean_difference_test` uses the exact permutation test."""
    return len(first) >= 2 and len(second) >= 2 and not (statistics.pvariance(first) == 0 and statistics.pvariance(second) == 0)


def welch(first: Sequence[float], second: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test that two sets of per-seed values share a mean; NaN where undefined."""
    if not welch_defined(first, second):
        return math.nan
    return float(stats.ttest_ind(first, second, equal_var=False).pvalue)


@dataclasses.dataclass(frozen=True)
class Test:
    """A two-sided test of "same mean" on per-seed values: which test, its p, and the smallest p it can give."""

    name: str
    p_value: float
    smallest_p: float = 0.0  # > 0 for an exact permutation test: the best that many seeds can show


def permutation_test(first: Sequence[float], second: Sequence[float]) -> Test:
    """Exact two-sided permutation test of the difference in means, over every split of the pooled values.

    Used where a side has no spread and a t-test is undefined; with 3 against 3 seeds there are 20
    splits, so no result can be stronger than 2/20 = 0.1, and the test says so.
    """
    pooled = np.asarray([*first, *second], dtype=float)
    size = len(first)
    observed = abs(statistics.fmean(first) - statistics.fmean(second))
    differences = []
    for chosen in itertools.combinations(range(len(pooled)), size):
        mask = np.zeros(len(pooled), dtype=bool)
        mask[list(chosen)] = True
        differences.append(abs(pooled[mask].mean() - pooled[~mask].mean()))
    differences = np.asarray(differences)
    tolerance = 1e-12 * max(1.0, float(np.abs(pooled).max()))
    p_value = float(np.mean(differences >= observed - tolerance))
    smallest = float(np.mean(differences >= differences.max() - tolerance))
    return Test("exact permutation test", p_value, smallest)


def mean_difference_test(first: Sequence[float], second: Sequence[float]) -> Test:
    """Welch's t-test where the values have spread; the exact permutation test where neither side has any."""
    if len(first) < 2 or len(second) < 2:
        return Test("no test (fewer than two seeds)", math.nan)
    if not welch_defined(first, second):
        return permutation_test(first, second)
    return Test("Welch's t-test", welch(first, second))


def tost(first: Sequence[float], second: Sequence[float], margin: float) -> float:
    """Two one-sided Welch tests that the difference in means lies within (-margin, +margin).

    The p-value is the larger of the two one-sided ones; below alpha, the difference is shown to be
    smaller than the margin. NaN where Welch's test is undefined (fewer than two seeds, or no spread).
    """
    if not welch_defined(first, second):
        return math.nan
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    above = stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater").pvalue
    below = stats.ttest_ind(a - margin, b, equal_var=False, alternative="less").pvalue
    return float(max(above, below))


def difference_interval(first: Sequence[float], second: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Welch's confidence interval of mean(first) - mean(second); NaNs where it is undefined."""
    if not welch_defined(first, second):
        return math.nan, math.nan
    result = stats.ttest_ind(first, second, equal_var=False).confidence_interval(confidence_level=confidence)
    return float(result.low), float(result.high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the family-wise error stays at alpha when each adjusted p < alpha
    is called significant. NaNs (no test) are left out of the family and stay NaN."""
    indexed = sorted((value, index) for index, value in enumerate(p_values) if not math.isnan(value))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (value, index) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * value))
        adjusted[index] = running
    return adjusted


def format_p(p_value: float) -> str:
    """A p-value as printed: three digits, or a bound where it is below what a float holds."""
    if math.isnan(p_value):
        return "no test"
    if p_value < 1e-300:
        return "< 1e-300"
    return f"{p_value:.3g}"


def clopper_pearson(count: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of the proportion `count / total`; (NaN, NaN) without runs."""
    if total <= 0:
        return math.nan, math.nan
    interval = stats.binomtest(int(count), int(total)).proportion_ci(confidence_level=confidence, method="exact")
    return float(interval.low), float(interval.high)


FAILURE_TESTS = {"boschloo": "Boschloo's exact test", "fisher": "Fisher's exact test"}


def failure_test(first_failed: int, first_runs: int, second_failed: int, second_runs: int, method: str) -> Test:
    """Two-sided exact test that two failure rates are equal, with the smallest p these run counts allow
    (every run of one side failed, none of the other's). Boschloo's test is Fisher's p used as the
    statistic, maximised over the common rate: never less powerful than Fisher's, as exact."""
    if method not in FAILURE_TESTS:
        raise ValueError(f"no failure test {method!r}; known: {', '.join(FAILURE_TESTS)}")

    def p_of(a: int, b: int) -> float:
        table = [[a, first_runs - a], [b, second_runs - b]]
        if method == "boschloo":
            # SciPy's optimiser behind it (shgo) logs its bounds to the root logger at INFO; not ours to print.
            previous = logging.root.manager.disable
            logging.disable(logging.INFO)
            try:
                return float(stats.boschloo_exact(table, alternative="two-sided").pvalue)
            finally:
                logging.disable(previous)
        return float(stats.fisher_exact(table, alternative="two-sided").pvalue)

    if first_runs < 1 or second_runs < 1:
        return Test("no test (a side without runs)", math.nan)
    if first_failed + second_failed in (0, first_runs + second_runs):
        return Test("no test (no difference in failures possible)", math.nan)
    return Test(FAILURE_TESTS[method], min(1.0, p_of(first_failed, second_failed)), min(1.0, p_of(0, second_runs)))


def majority_test(failed: int, runs: int) -> tuple[float, float]:
    """One-sided exact binomial p-values that a model fails in more than half of its runs, and in fewer."""
    if runs < 1:
        return math.nan, math.nan
    more = stats.binomtest(int(failed), int(runs), 0.5, alternative="greater").pvalue
    fewer = stats.binomtest(int(failed), int(runs), 0.5, alternative="less").pvalue
    return float(more), float(fewer)


COMBINED = {"stouffer": "Stouffer's method", "fisher": "Fisher's method"}


def combine_p(p_values: Sequence[float], method: str) -> float:
    """One p from independent one-sided per-seed p-values (SciPy's `combine_pvalues`); NaN without any."""
    if method not in COMBINED:
        raise ValueError(f"no combining method {method!r}; known: {', '.join(COMBINED)}")
    values = [min(max(value, 1e-300), 1.0) for value in p_values if not math.isnan(value)]
    if not values:
        return math.nan
    return float(stats.combine_pvalues(values, method=method).pvalue)


def below_bound(values: Sequence[float], bound: float) -> float:
    """One-sided one-sample t-test that the mean of `values` is below `bound`; NaN for fewer than two
    values or none spread (then the values alone cannot bound a mean)."""
    if len(values) < 2 or statistics.pvariance(values) == 0:
        return math.nan
    return float(stats.ttest_1samp(values, bound, alternative="less").pvalue)


def clip_interval(interval: tuple[float, float], scale: tuple[float, float] | None) -> tuple[float, float]:
    """A difference's interval kept inside what a difference of two values on `scale` can be."""
    low, high = interval
    if scale is None or math.isnan(low):
        return low, high
    width = scale[1] - scale[0]
    return max(low, -width), min(high, width)
