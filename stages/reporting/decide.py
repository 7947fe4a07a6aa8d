"""The decision engine: is one model better than another, across its seeds? One code path for the
notebook's claims (`claims.py`) and for `python -m stages compare` (`compare.py`).

A comparison of two models on one measure, from one run per seed on each side:
1. **Failures are their own outcome.** A run failed when its test accuracy is at most
   `report.chance_accuracy`; each side's failures are counted (with their exact Clopper-Pearson
   interval) and the two failure rates compared by an exact test (`report.failure_test`). A failed
   run's metric is never averaged in.
2. **Among the runs that trained**, the measure is compared by Welch's t-test (the exact
   permutation test where neither side has spread), with its interval kept inside the measure's
   scale, and by the equivalence test (TOST) against plus and minus the minimum effect.
3. **Holm's method** adjusts each kind of test (superiority, equivalence, failure rates) over its
   family (`decide`'s `families`: per claim for the claims, everything compared for `compare`).
4. **The verdict** weighs the two (`weigh`, the one decision table), and an inconclusive one gets its
   outlooks (`power.outlook`): at the effect observed and at zero.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from stages.params.report import ReportParams
from stages.reporting.power import AHEAD, AS_VERDICT, BEHIND, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, WITHIN, Outlook, Rule, outlook
from stages.reporting.stats import Spread, clip_interval, clopper_pearson, difference_interval, failure_test, holm, mean_difference_test, tost

NO_TEST = "no test"  # the trained-run rule's outcome where a side has fewer than two trained runs
BETTER_WHEN_TRAINED = "supported when it trains"  # a larger share of its runs failed, not shown to differ
LESS_RELIABLE = "better when it trains, less reliable"
MEASURES_DISAGREE = "inconclusive: measures disagree"
NOT_EVALUATED = "not evaluated"
QUALIFIED = (SUPPORTED, BETTER_WHEN_TRAINED, LESS_RELIABLE)  # strongest first
# The failure-rate test's outcomes, for the side claimed better.
NO_FAILURES, FEWER, MORE, UNSHOWN = "no failed run", "fails less often", "fails more often", "not shown to differ"


@dataclasses.dataclass(frozen=True)
class Measure:
    name: str
    value: Callable[[Any], float]  # of one run
    higher_is_better: bool
    min_effect: float
    unit: str  # "points" (a fraction shown x 100) or "" (shown as is)
    scale: tuple[float, float] | None = None  # the values' possible range, where there is one


@dataclasses.dataclass(frozen=True)
class Failures:
    """Both sides' failed runs and the exact test of their rates."""

    better: int
    better_runs: int
    worse: int
    worse_runs: int
    test: str
    p_value: float
    smallest_p: float
    p_holm: float = math.nan
    outcome: str = NO_FAILURES

    @property
    def better_interval(self) -> tuple[float, float]:
        return clopper_pearson(self.better, self.better_runs)

    @property
    def worse_interval(self) -> tuple[float, float]:
        return clopper_pearson(self.worse, self.worse_runs)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One comparison: raw tests, Holm-adjusted in its families, decided."""

    better: str  # the side claimed (or hoped) better
    worse: str
    measure: Measure
    difference: float  # among trained runs, in `better`'s favour; NaN without a test
    interval: tuple[float, float]  # its 95% Welch interval, inside the measure's scale
    test: str
    p_value: float
    smallest_p: float
    equivalence_p: float  # TOST against +/- the minimum effect
    trained_better: Spread  # the trained runs' values (as measured, not signed)
    trained_worse: Spread
    failures: Failures
    p_holm: float = math.nan
    equivalence_p_holm: float = math.nan
    level: float = math.nan  # the raw level Holm's step gives the superiority test in its family
    equivalence_level: float = math.nan
    outcome: str = NO_TEST  # the trained-run rule: ahead, behind, within the minimum, undecided, no test
    verdict: str = INCONCLUSIVE
    outlooks: tuple[Outlook, ...] = ()  # inconclusive only: at the effect observed, then at zero

    @property
    def key(self) -> str:
        return f"{self.better}_vs_{self.worse}"

    @property
    def seeds(self) -> int:
        """Trained runs on the smaller side: what the outlook simulates."""
        return min(len(self.trained_better.values), len(self.trained_worse.values))


def has_failed(run: Any, chance_accuracy: float) -> bool:
    return run.test_accuracy <= chance_accuracy


def measure_pair(better: str, better_runs: Sequence[Any], worse: str, worse_runs: Sequence[Any], measure: Measure, rules: ReportParams) -> Comparison:
    """The raw tests of one comparison; `decide` adjusts them with the others and decides."""
    sign = 1.0 if measure.higher_is_better else -1.0
    kept = [[run for run in runs if not has_failed(run, rules.chance_accuracy)] for runs in (better_runs, worse_runs)]
    values = [tuple(float(measure.value(run)) for run in runs) for runs in kept]
    first, second = ([sign * value for value in side] for side in values)
    test = mean_difference_test(first, second)
    tested = not math.isnan(test.p_value)
    lost = [len(runs) - len(trained) for runs, trained in zip((better_runs, worse_runs), kept, strict=True)]
    rates = failure_test(lost[0], len(better_runs), lost[1], len(worse_runs), rules.failure_test)
    return Comparison(
        better=better,
        worse=worse,
        measure=measure,
        difference=float(np.mean(first) - np.mean(second)) + 0.0 if first and second else math.nan,
        interval=clip_interval(difference_interval(first, second), measure.scale),
        test=test.name,
        p_value=test.p_value,
        smallest_p=test.smallest_p,
        equivalence_p=tost(first, second, measure.min_effect) if tested else math.nan,
        trained_better=Spread(values[0]),
        trained_worse=Spread(values[1]),
        failures=Failures(lost[0], len(better_runs), lost[1], len(worse_runs), rates.name, rates.p_value, rates.smallest_p),
    )


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """The raw level Holm's step-down compares each p with: alpha / (tests not yet passed at its rank).
    Tied p-values share the level of the first of them: Holm passes a tie together or not at all."""
    ranked = sorted(value for value in p_values if not math.isnan(value))
    return [math.nan if math.isnan(value) else alpha / (len(ranked) - ranked.index(value)) for value in p_values]


def _by_family(p_values: Sequence[float], families: Sequence[Hashable], alpha: float) -> tuple[list[float], list[float]]:
    """Holm-adjusted p and Holm level of each test, within its family."""
    adjusted, levels = [math.nan] * len(p_values), [math.nan] * len(p_values)
    for family in dict.fromkeys(families):
        members = [index for index, label in enumerate(families) if label == family]
        values = [p_values[index] for index in members]
        for index, p_holm, level in zip(members, holm(values), holm_levels(values, alpha), strict=True):
            adjusted[index], levels[index] = p_holm, level
    return adjusted, levels


def failure_outcome(failures: Failures, alpha: float) -> str:
    if failures.better == 0 and failures.worse == 0:
        return NO_FAILURES
    if failures.p_holm < alpha:
        return FEWER if failures.better / failures.better_runs < failures.worse / failures.worse_runs else MORE
    return UNSHOWN


def weigh(outcome: str, failures: str, balance: int) -> str:
    """The decision table: the trained-run outcome and the failure-rate outcome give the verdict.

    - fails more often (shown): "better when it trains, less reliable" if ahead, else not supported;
    - fails less often (shown): supported unless behind when trained (then inconclusive);
    - otherwise the trained-run outcome decides (ahead: supported; behind or within the minimum: not
      supported; undecided or no test: inconclusive), except that "ahead" with a larger share of failed
      runs observed reads "supported when it trains; not shown to be as reliable", and "within the
      minimum" with a smaller share observed stays inconclusive.
    `balance`: the sign of (the claimed side's share of failed runs - the other side's).
    """
    if failures == MORE:
        return LESS_RELIABLE if outcome == AHEAD else NOT_SUPPORTED
    if failures == FEWER:
        return INCONCLUSIVE if outcome == BEHIND else SUPPORTED
    verdict = AS_VERDICT.get(outcome, INCONCLUSIVE)
    if failures == UNSHOWN and verdict == SUPPORTED and balance > 0:
        return BETTER_WHEN_TRAINED
    if failures == UNSHOWN and outcome == WITHIN and balance < 0:
        return INCONCLUSIVE
    return verdict


def decide(comparisons: Sequence[Comparison], families: Sequence[Hashable], rules: ReportParams) -> list[Comparison]:
    """Holm within each family (one label per comparison) for each kind of test, then each verdict and,
    where inconclusive, its outlooks."""
    alpha = rules.significance_level
    p_holm, levels = _by_family([item.p_value for item in comparisons], families, alpha)
    equivalence_holm, equivalence_levels = _by_family([item.equivalence_p for item in comparisons], families, alpha)
    # One failure-rate test per pair of sides in a family, whatever the measures compared: the runs that failed are the same.
    pairs = list(dict.fromkeys((family, item.better, item.worse) for family, item in zip(families, comparisons, strict=True)))
    first = {pair: next(item for family, item in zip(families, comparisons, strict=True) if (family, item.better, item.worse) == pair) for pair in pairs}
    adjusted, _ = _by_family([first[pair].failures.p_value for pair in pairs], [pair[0] for pair in pairs], alpha)
    by_pair = dict(zip(pairs, adjusted, strict=True))
    failure_holm = [by_pair[(family, item.better, item.worse)] for family, item in zip(families, comparisons, strict=True)]
    decided = []
    for index, item in enumerate(comparisons):
        failures = dataclasses.replace(item.failures, p_holm=failure_holm[index])
        failures = dataclasses.replace(failures, outcome=failure_outcome(failures, alpha))
        item = dataclasses.replace(
            item,
            failures=failures,
            p_holm=p_holm[index],
            equivalence_p_holm=equivalence_holm[index],
            level=levels[index],
            equivalence_level=equivalence_levels[index],
        )
        tested = not math.isnan(item.p_value)
        outcome = Rule(alpha, alpha, item.measure.min_effect).decide(item.difference, item.p_holm, item.equivalence_p_holm) if tested else NO_TEST
        shares = failures.better / max(failures.better_runs, 1) - failures.worse / max(failures.worse_runs, 1)
        verdict = weigh(outcome, failures.outcome, (shares > 0) - (shares < 0))
        found = ()
        if verdict == INCONCLUSIVE and outcome != NO_TEST:
            found = outlooks(item, rules)
        decided.append(dataclasses.replace(item, outcome=outcome, verdict=verdict, outlooks=found))
    return decided


def outlooks(item: Comparison, rules: ReportParams) -> tuple[Outlook, ...]:
    """The comparison's rule simulated at the effect observed and at zero, with the trained runs' spreads."""
    rule = Rule(
        rules.significance_level if math.isnan(item.level) else item.level,
        rules.significance_level if math.isnan(item.equivalence_level) else item.equivalence_level,
        item.measure.min_effect,
    )
    spreads = [0.0 if math.isnan(value) else value for value in (item.trained_better.sd, item.trained_worse.sd)]
    return tuple(
        outlook(rule, effect, *spreads, item.seeds, rules.power_target, rules.simulations, rules.simulation_seed, rules.power_max_seeds)
        for effect in (item.difference, 0.0)
    )


def combine(verdicts: Sequence[str]) -> str:
    """A claim of several parts: not supported if any part is; supported if every part is; else the
    weakest qualified "supported" every part reaches; else inconclusive."""
    found = set(verdicts)
    if not found:
        return INCONCLUSIVE
    if NOT_SUPPORTED in found:
        return NOT_SUPPORTED
    for depth in range(1, len(QUALIFIED) + 1):
        if found <= set(QUALIFIED[:depth]):
            return QUALIFIED[depth - 1]
    return INCONCLUSIVE


def agree(verdicts: Sequence[str]) -> str:
    """One claim on several measures: their verdict when every one decides the same way; "measures
    disagree" when one says supported and another not supported; inconclusive otherwise."""
    found = set(verdicts)
    if len(found) == 1 and found <= {SUPPORTED, NOT_SUPPORTED}:
        return found.pop()
    if {SUPPORTED, NOT_SUPPORTED} <= found:
        return MEASURES_DISAGREE
    return INCONCLUSIVE
