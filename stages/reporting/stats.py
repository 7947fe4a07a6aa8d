"""The report's statistics, on SciPy's tests (`scipy.stats`), as pure functions.

- `wilson_interval`: the 95% Wilson score interval of an accuracy on n test images.
- `mcnemar_exact`: McNemar's exact test for two models scored on the same images: of the images
  exactly one model gets right, under "equally good" each is the first model's with probability
  1/2, so the two-sided p-value is an exact binomial test on the discordant counts.
- `welch`: across seeds, Welch's t-test (unequal variances) on one value per seed and model.

SciPy is used rather than our own code because its binomial and t distributions are exact and
well tested; these wrappers only fix the conventions (two-sided, what counts as "no data").
"""

from __future__ import annotations

import dataclasses
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
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        """Sample standard deviation (n - 1); NaN for fewer than two seeds."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def welch(first: Sequence[float], second: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test that two sets of per-seed values share a mean.

    NaN when it is undefined: fewer than two seeds on a side, or no spread on either side (then
    the values themselves say whether they differ; `verdict` treats NaN as "no test").
    """
    if len(first) < 2 or len(second) < 2:
        return math.nan
    if statistics.pvariance(first) == 0 and statistics.pvariance(second) == 0:
        return math.nan
    return float(stats.ttest_ind(first, second, equal_var=False).pvalue)
