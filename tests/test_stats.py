"""The report's statistics against values worked out by hand or printed in the literature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from stages.reporting import stats as stats_module
from stages.reporting.stats import (
    Spread,
    format_p,
    holm,
    mcnemar_exact,
    mean_difference_test,
    permutation_test,
    tost,
    welch,
    welch_defined,
    wilson_interval,
)


def test_wilson_interval_matches_newcombe_1998() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, example 81/263: Wilson interval 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_interval_by_the_formula() -> None:
    correct, total, z = 9_933, 10_000, 1.959963984540054
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    assert wilson_interval(correct, total) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_mcnemar_exact_by_hand() -> None:
    # 1 image only the first model gets right, 9 only the second: two-sided exact binomial,
    # p = 2 * P(X <= 1 | n = 10, 1/2) = 2 * (1 + 10) / 2**10 = 22/1024.
    first = np.array([True] * 50 + [True] + [False] * 9 + [False] * 5)
    second = np.array([True] * 50 + [False] + [True] * 9 + [False] * 5)
    test = mcnemar_exact(first, second)
    assert (test.only_first, test.only_second) == (1, 9)
    assert test.p_value == pytest.approx(22 / 1024, rel=1e-12)


def test_mcnemar_without_discordant_images_is_one_and_shapes_must_match() -> None:
    same = np.array([True, False, True])
    assert mcnemar_exact(same, same).p_value == 1.0
    with pytest.raises(ValueError, match="different images"):
        mcnemar_exact(same, same[:2])


def test_welch_by_hand_and_undefined_cases() -> None:
    # [1, 2, 3] vs [4, 5, 6]: t = -3 / sqrt(1/3 + 1/3) = -3.674, 4 degrees of freedom, p = 0.0213.
    assert welch([1, 2, 3], [4, 5, 6]) == pytest.approx(0.021312, abs=1e-6)
    assert welch([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(welch([1.0], [2.0, 3.0]))
    assert math.isnan(welch([1.0, 1.0], [2.0, 2.0]))


def test_spread() -> None:
    values = Spread((0.9915, 0.9952, 0.9924))
    assert values.mean == pytest.approx(0.993033333)
    assert values.sd == pytest.approx(0.0019296, abs=1e-6)
    assert (values.low, values.high) == (0.9915, 0.9952)
    assert math.isnan(Spread((0.5,)).sd)


def test_holm_by_hand() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> made monotone: 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.5, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(1.0) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(1.0)


def test_tost_by_hand() -> None:
    # [1, 2, 3] vs [1, 2, 3] within +/-2: both one-sided t = 2 / sqrt(2/3) = 2.449 on 4 degrees of
    # freedom, one-sided p = 0.0352 (t table); TOST's p is the larger of the two.
    assert tost([1, 2, 3], [1, 2, 3], 2.0) == pytest.approx(0.0352, abs=1e-4)
    # A difference as large as the margin cannot be shown smaller than it.
    assert tost([3, 4, 5], [1, 2, 3], 2.0) == pytest.approx(0.5, abs=1e-9)
    assert math.isnan(tost([1, 1, 1], [2, 2, 2], 0.5))


def test_welchs_undefined_case_is_decided_in_one_place() -> None:
    assert welch_defined([1.0, 2.0], [1.0, 1.0]) and not welch_defined([1.0], [1.0, 2.0]) and not welch_defined([1.0, 1.0], [2.0, 2.0])
    assert math.isnan(welch([1.0, 1.0], [2.0, 2.0])) and math.isnan(tost([1.0, 1.0], [2.0, 2.0], 0.5))


def test_the_exact_permutation_test_and_its_smallest_p() -> None:
    # 3 against 3 distinct values: 20 splits, the observed one and its mirror are the extremes: p = 2/20.
    test = permutation_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert (test.p_value, test.smallest_p) == (pytest.approx(0.1), pytest.approx(0.1))
    assert permutation_test([1.0, 1.0, 1.0], [1.0, 1.0, 2.0]).p_value == pytest.approx(1.0)
    # Without spread on either side the t-test is undefined: the exact test answers, and says its limit.
    chosen = mean_difference_test([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert chosen.name == "exact permutation test" and chosen.smallest_p == pytest.approx(0.1)
    assert mean_difference_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]).name == "Welch's t-test"


def test_p_values_print_as_numbers_or_bounds() -> None:
    assert format_p(0.0) == "< 1e-300" and format_p(1e-320) == "< 1e-300"
    assert format_p(0.04932) == "0.0493" and format_p(math.nan) == "no test"


def test_clopper_pearson_by_the_beta_quantiles() -> None:
    # Exact interval of k failures in n runs: Beta(k, n-k+1) at 2.5% and Beta(k+1, n-k) at 97.5%; 0/5 gives 0 to 1 - 0.025^(1/5).
    assert stats_module.clopper_pearson(0, 5) == pytest.approx((0.0, 1 - 0.025 ** (1 / 5)))
    assert stats_module.clopper_pearson(5, 5) == pytest.approx((0.025 ** (1 / 5), 1.0))
    low, high = stats_module.clopper_pearson(1, 5)
    assert (round(low, 4), round(high, 4)) == (0.0051, 0.7164)
    assert all(math.isnan(value) for value in stats_module.clopper_pearson(0, 0))


def test_failure_rates_by_exact_tests_by_hand() -> None:
    # Fisher, 1 of 5 against 5 of 5: the tables as or less likely than the observed one, by hypergeometry (6 failures in 10 runs):
    # P(a=1) = C(6,1)C(4,4)/C(10,5) = 6/252 and P(a=5) = 6/252 likewise; two-sided p = 12/252.
    fisher = stats_module.failure_test(1, 5, 5, 5, "fisher")
    assert fisher.p_value == pytest.approx(12 / 252) and fisher.name == "Fisher's exact test"
    assert fisher.smallest_p == pytest.approx(2 / 252)
    # Boschloo's (Fisher's p as the statistic, maximised over the nuisance rate): 0.0137, the audit's 0.014.
    boschloo = stats_module.failure_test(1, 5, 5, 5, "boschloo")
    assert boschloo.p_value == pytest.approx(0.013731, abs=1e-6) and boschloo.p_value < fisher.p_value
    # 0 of 5 against 5 of 5: the most extreme table; its p is the smallest the design allows, (1/2)^9 for Boschloo.
    assert stats_module.failure_test(0, 5, 5, 5, "boschloo").p_value == pytest.approx(0.5**9)
    assert stats_module.failure_test(1, 5, 0, 5, "boschloo").p_value == pytest.approx(0.58826, abs=1e-5)
    assert math.isnan(stats_module.failure_test(0, 5, 0, 5, "boschloo").p_value)
    with pytest.raises(ValueError, match="no failure test 'chi2'"):
        stats_module.failure_test(1, 5, 0, 5, "chi2")


def test_majority_and_bound_tests_by_hand() -> None:
    # 5 failures of 5 against a rate of one half: (1/2)^5 = 1/32; 4 of 5: 6/32.
    assert stats_module.majority_test(5, 5) == pytest.approx((1 / 32, 1.0))
    assert stats_module.majority_test(4, 5)[0] == pytest.approx(6 / 32)
    # One-sample t below a bound: values 1, 2, 3 (mean 2, sd 1) against 4: t = (2 - 4) / (1 / sqrt 3) = -3.464, 2 df.
    expected = stats.t.cdf(-2 / (1 / math.sqrt(3)), 2)
    assert stats_module.below_bound([1.0, 2.0, 3.0], 4.0) == pytest.approx(expected)
    assert math.isnan(stats_module.below_bound([1.0, 1.0], 4.0))


def test_seeds_combined_by_stouffer_and_fisher_by_hand() -> None:
    # The audit's claim 1: calibrated p 0.0005, 0.17, 0.37, 0.10, 0.08 give Stouffer 0.0006 and Fisher 0.0007.
    values = [0.0005, 0.17, 0.37, 0.10, 0.08]
    z = sum(stats.norm.isf(value) for value in values) / math.sqrt(5)
    assert stats_module.combine_p(values, "stouffer") == pytest.approx(stats.norm.sf(z)) and round(stats_module.combine_p(values, "stouffer"), 4) == 0.0006
    chi = -2 * sum(math.log(value) for value in values)
    assert stats_module.combine_p(values, "fisher") == pytest.approx(stats.chi2.sf(chi, 10)) and round(stats_module.combine_p(values, "fisher"), 4) == 0.0007


def test_an_interval_stays_inside_the_scale() -> None:
    assert stats_module.clip_interval((0.2138, 1.1844), (0.0, 1.0)) == (0.2138, 1.0)
    assert stats_module.clip_interval((-1.5, 0.3), (0.0, 1.0)) == (-1.0, 0.3)
    assert stats_module.clip_interval((-1.5, 0.3), None) == (-1.5, 0.3)
