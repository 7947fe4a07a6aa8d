"""The chance that a comparison's declared rule decides, by simulating the whole rule.

A t-test's power is not the verdict's: "supported" also needs the observed effect to reach the
minimum effect, the test is Welch's (its degrees of freedom follow the two arms' spreads), and the
p-value must pass the Holm-adjusted level, not the nominal one. `rule_outcomes` draws per-seed
values for both arms (normal, each arm with its own observed sd, the true difference given), runs
exactly that rule on each draw (`Rule.outcomes`, which `decide.py` also applies, through
`Rule.decide`, to the real numbers) and counts the verdicts. NumPy draws and SciPy's t distribution; the draws are vectorised,
so a few thousand simulated experiments cost milliseconds.

An inconclusive verdict's outlook (`outlook`) is simulated at the effect observed and at zero: the
chances of "supported" and "not supported" with the seeds there are, and the seeds the verdict that
effect should lead to would need. Only runs that trained are simulated (a failed run is its own
outcome, not noise). At a true effect equal to the minimum effect the observed effect reaches the
minimum about half the time whatever the seeds, so no number of seeds gives "supported" a chance
above 0.5 there; the search stops at `report.power_max_seeds` and says so.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
# What the trained-run rule finds for one comparison, before failures are weighed (decide.py):
AHEAD, BEHIND, WITHIN, UNDECIDED = "ahead", "behind", "within the minimum", "undecided"
# How an outcome reads as a verdict on "the first is better".
AS_VERDICT = {AHEAD: SUPPORTED, BEHIND: NOT_SUPPORTED, WITHIN: NOT_SUPPORTED, UNDECIDED: INCONCLUSIVE}


@dataclasses.dataclass(frozen=True)
class Rule:
    """The rule for one comparison of per-seed values: the levels its two tests face and the minimum effect."""

    level: float  # the Holm-adjusted level the superiority test must pass
    equivalence_level: float  # the same for the equivalence test (TOST)
    min_effect: float

    def outcomes(self, difference: np.ndarray, p_value: np.ndarray, equivalence_p: np.ndarray) -> np.ndarray:
        """The outcome of each experiment (arrays of one value per experiment; a NaN p is no test):
        ahead when the test passes its level and the effect reaches the minimum in the first's favour;
        behind when it does so the other way; within the minimum when the equivalence test passes its
        level; undecided otherwise."""
        difference, p_value, equivalence_p = (np.asarray(value, dtype=float) for value in (difference, p_value, equivalence_p))
        significant = p_value < self.level  # False for NaN
        ahead = significant & (difference >= self.min_effect)
        behind = ~ahead & significant & (-difference >= self.min_effect)
        within = ~ahead & ~behind & (equivalence_p < self.equivalence_level)
        return np.where(ahead, AHEAD, np.where(behind, BEHIND, np.where(within, WITHIN, UNDECIDED)))

    def decide(self, difference: float, p_value: float, equivalence_p: float) -> str:
        return str(self.outcomes(np.array([difference]), np.array([p_value]), np.array([equivalence_p]))[0])


def _welch(first: np.ndarray, second: np.ndarray, shift: float = 0.0, alternative: str = "two-sided") -> np.ndarray:
    """Welch's t-test of mean(first) + shift vs mean(second), row by row (one simulated experiment per row)."""
    n1, n2 = first.shape[1], second.shape[1]
    v1, v2 = first.var(axis=1, ddof=1) / n1, second.var(axis=1, ddof=1) / n2
    spread = np.sqrt(v1 + v2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (first.mean(axis=1) + shift - second.mean(axis=1)) / spread
        freedom = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    if alternative == "greater":
        return stats.t.sf(t, freedom)
    if alternative == "less":
        return stats.t.cdf(t, freedom)
    return 2 * stats.t.sf(np.abs(t), freedom)


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """Shares of the simulated experiments per verdict."""

    supported: float
    not_supported: float
    inconclusive: float


def rule_outcomes(rule: Rule, effect: float, sd_first: float, sd_second: float, seeds: int, simulations: int, rng: np.random.Generator) -> Outcomes:
    """Run `rule` on `simulations` experiments of `seeds` seeds per arm whose true difference is `effect`."""
    if seeds < 2 or not (sd_first > 0 or sd_second > 0):
        return Outcomes(math.nan, math.nan, math.nan)
    first = rng.normal(effect, sd_first, size=(simulations, seeds))
    second = rng.normal(0.0, sd_second, size=(simulations, seeds))
    difference = first.mean(axis=1) - second.mean(axis=1)
    equivalence = np.maximum(_welch(first, second, rule.min_effect, "greater"), _welch(first, second, -rule.min_effect, "less"))
    found = rule.outcomes(difference, _welch(first, second), equivalence)
    supported, against = float(np.mean(found == AHEAD)), float(np.mean((found == BEHIND) | (found == WITHIN)))
    return Outcomes(supported, against, 1.0 - supported - against)


@dataclasses.dataclass(frozen=True)
class Outlook:
    """What the same rule would say if the true difference were `effect`: the chances of each decided
    verdict with the `seeds` trained runs per side there are now, and the fewest seeds per side at
    which `verdict` (the one that effect should lead to) reaches `target` (None: not within `most`)."""

    effect: float
    seeds: int
    supported: float
    not_supported: float
    verdict: str
    target: float
    seeds_needed: int | None
    most: int


def expected_verdict(rule: Rule, effect: float) -> str:
    """The verdict a true `effect` should lead to: supported at or past the minimum effect, else not supported."""
    return SUPPORTED if effect >= rule.min_effect else NOT_SUPPORTED


def outlook(rule: Rule, effect: float, sd_first: float, sd_second: float, seeds: int, target: float, simulations: int, seed: int, most: int) -> Outlook:
    """Simulated chances now, and the seeds the expected verdict needs (doubling, then bisection; each
    count simulated with the same generator seed: the chance rises with the seeds, up to its limit)."""
    verdict = expected_verdict(rule, effect)

    def simulate(count: int) -> Outcomes:
        return rule_outcomes(rule, effect, sd_first, sd_second, count, simulations, np.random.default_rng(seed))

    def chance(count: int) -> float:
        found = simulate(count)
        return found.supported if verdict == SUPPORTED else found.not_supported

    now = simulate(seeds)
    if math.isnan(now.supported):
        return Outlook(effect, seeds, math.nan, math.nan, verdict, target, None, most)

    def result(needed: int | None) -> Outlook:
        return Outlook(effect, seeds, now.supported, now.not_supported, verdict, target, needed, most)

    if chance(seeds) >= target:
        return result(seeds)
    low, high = seeds, max(seeds, 2)
    while chance(high) < target:
        if high >= most:
            return result(None)
        low, high = high, min(most, 2 * high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if chance(middle) >= target else (middle, high)
    return result(high)


def student_power(effect: float, sd: float, seeds: int, alpha: float) -> float:
    """Closed form for the rule's special case without the minimum-effect condition and with equal
    spreads: a two-sided Student t-test's chance to be significant in the effect's direction
    (noncentral t, 2n - 2 degrees of freedom). The simulation's tests compare against it."""
    freedom = 2 * seeds - 2
    noncentrality = effect / (sd * math.sqrt(2 / seeds))
    return float(stats.nct.sf(stats.t.ppf(1 - alpha / 2, freedom), freedom, noncentrality))
