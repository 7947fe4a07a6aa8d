"""The report's statistics against values worked out by hand or printed in the literature."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stages.reporting.stats import Spread, mcnemar_exact, welch, wilson_interval


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
