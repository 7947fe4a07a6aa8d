"""The notebook's six closing claims, each decided by a rule declared before the numbers (pure functions).

Every model (and ablation) has one `Run` per seed: the main run at `train.seed` and the replicas.
Each comparative claim compares per-seed values of a declared measure, and every test behind the six
claims is one family, adjusted with Holm's method (`stages.reporting.stats.holm`). The rules, with
their thresholds in `params.yaml: report`:

- **supported**: the effect in the claim's direction is at least the minimum effect and its
  Holm-adjusted p is below the significance level;
- **not supported**: the opposite effect passes that rule, or the equivalence test (two one-sided
  Welch tests against plus and minus the minimum effect, Holm-adjusted too) shows the difference is
  smaller than the minimum effect;
- **inconclusive** otherwise, printed with the power the current seeds give to detect the minimum
  effect and the number of seeds per model that would give the target power.

The tests are Welch's t-test where the values have spread and the exact permutation test where
neither side has any (its smallest attainable p is printed: with 3 against 3 seeds it is 0.1). A
claim about one model (it overfits, it learned nothing) must hold at every seed to be supported and
fail at every seed to be not supported. Claim 4 is decided on a continuous measure (validation
accuracy after the declared epoch); epochs to a threshold are shown, never decide.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from stages.params.report import ReportParams
from stages.reporting.stats import (
    McNemar,
    Spread,
    difference_interval,
    format_p,
    holm,
    mcnemar_exact,
    mean_difference_test,
    power,
    seeds_for_power,
    tost,
)

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_EVALUATED = "supported", "not supported", "inconclusive", "not evaluated"
NEVER = math.inf  # epochs to a threshold that a run never reached


def epochs_to(values: Sequence[float], threshold: float) -> float:
    """First epoch (from 1) whose value reaches `threshold`; `NEVER` (infinity) if none did. The one
    place this is computed: the claims, the seed table and the observations all use it."""
    return next((float(epoch) for epoch, value in enumerate(values, start=1) if value >= threshold), NEVER)


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained model at one seed: its final metrics, per-epoch history and test predictions."""

    seed: int
    test_accuracy: float
    test_loss: float
    train_loss: float  # the last epoch's training log, as in the notebook's table
    val_accuracy: tuple[float, ...]
    correct: np.ndarray  # per test image: was the prediction right?
    val_loss: tuple[float, ...] = ()
    loss: tuple[float, ...] = ()  # training loss per epoch (dropout on)
    train_loss_inference: float = math.nan  # the final weights on the training images, dropout off
    most_predicted_share: float = math.nan

    @property
    def loss_ratio(self) -> float:
        return self.test_loss / self.train_loss if self.train_loss > 0 else math.inf

    def epochs_to(self, threshold: float) -> float:
        """First epoch whose validation accuracy reaches `threshold`; `NEVER` (infinity) if none did."""
        return epochs_to(self.val_accuracy, threshold)

    def val_accuracy_after(self, epoch: int) -> float:
        return self.val_accuracy[min(epoch, len(self.val_accuracy)) - 1]

    def mean_val_accuracy(self, epochs: int) -> float:
        """The area under the validation-accuracy curve over the first `epochs` epochs, per epoch."""
        return float(np.mean(self.val_accuracy[:epochs]))

    def val_loss_rise(self) -> float:
        """How far the last epoch's validation loss is above its minimum, as a fraction of it."""
        if not self.val_loss:
            return math.nan
        return self.val_loss[-1] / min(self.val_loss) - 1.0

    def train_loss_still_falls(self) -> bool:
        """The last epoch's training loss is below its value at the epoch of least validation loss."""
        if not self.val_loss or not self.loss:
            return False
        best = int(np.argmin(self.val_loss))
        return best < len(self.loss) - 1 and self.loss[-1] < self.loss[best]

    def overfits(self, rise: float) -> bool:
        """The usual sign: validation loss up by at least `rise` from its minimum while training loss falls."""
        return self.val_loss_rise() >= rise and self.train_loss_still_falls()


@dataclasses.dataclass(frozen=True)
class Measure:
    name: str
    value: Callable[[Run], float]
    higher_is_better: bool
    min_effect: float
    unit: str  # how a difference prints: "points" (accuracy x 100)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One comparative test of a claim, before and after Holm's adjustment."""

    better: str  # the model the claim says is better
    worse: str
    measure: Measure
    difference: float  # in the claim's favour: positive means `better` is ahead
    interval: tuple[float, float]  # 95% Welch interval of the difference, in the claim's favour
    test: str
    p_value: float
    smallest_p: float
    equivalence_p: float  # TOST against +/- the minimum effect
    sd: float  # pooled per-seed sd, for the power
    seeds: int
    p_holm: float = math.nan
    equivalence_p_holm: float = math.nan
    verdict: str = INCONCLUSIVE
    power: float = math.nan
    seeds_needed: int | None = None


@dataclasses.dataclass(frozen=True)
class Claim:
    number: int
    quote: str
    evidence: str
    verdict: str
    comparisons: tuple[Comparison, ...] = ()


def spread(runs: Sequence[Run], measure: Callable[[Run], float]) -> Spread:
    return Spread(tuple(float(measure(run)) for run in runs))


def accuracy_measure(rules: ReportParams) -> Measure:
    return Measure("test accuracy", lambda run: run.test_accuracy, True, rules.min_accuracy_difference, "points")


def convergence_measure(rules: ReportParams) -> Measure:
    epoch = rules.convergence_epoch
    return Measure(f"validation accuracy after epoch {epoch}", lambda run: run.val_accuracy_after(epoch), True, rules.min_convergence_difference, "points")


def compare(runs: Mapping[str, Sequence[Run]], better: str, worse: str, measure: Measure) -> Comparison:
    """The raw test of one comparison; `decide` adjusts it with the others and gives the verdict."""
    sign = 1.0 if measure.higher_is_better else -1.0
    first = [sign * measure.value(run) for run in runs[better]]
    second = [sign * measure.value(run) for run in runs[worse]]
    test = mean_difference_test(first, second)
    low, high = difference_interval(first, second)
    pooled = math.sqrt((np.var(first, ddof=1) + np.var(second, ddof=1)) / 2) if len(first) > 1 and len(second) > 1 else math.nan
    return Comparison(
        better=better,
        worse=worse,
        measure=measure,
        difference=float(np.mean(first) - np.mean(second)) + 0.0,
        interval=(low, high),
        test=test.name,
        p_value=test.p_value,
        smallest_p=test.smallest_p,
        equivalence_p=tost(first, second, measure.min_effect),
        sd=pooled,
        seeds=min(len(first), len(second)),
    )


def decide(comparison: Comparison, alpha: float, target_power: float) -> Comparison:
    """The declared rule, on Holm-adjusted p-values (see the module's docstring)."""
    significant = not math.isnan(comparison.p_holm) and comparison.p_holm < alpha
    if significant and comparison.difference >= comparison.measure.min_effect:
        verdict = SUPPORTED
    elif significant and -comparison.difference >= comparison.measure.min_effect:
        verdict = NOT_SUPPORTED
    elif not math.isnan(comparison.equivalence_p_holm) and comparison.equivalence_p_holm < alpha:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    return dataclasses.replace(
        comparison,
        verdict=verdict,
        power=power(comparison.measure.min_effect, comparison.sd, comparison.seeds, alpha),
        seeds_needed=seeds_for_power(comparison.measure.min_effect, comparison.sd, alpha, target_power),
    )


def adjust(comparisons: Sequence[Comparison], alpha: float, target_power: float) -> list[Comparison]:
    """Holm over every test behind the claims (superiority and equivalence together), then the verdicts."""
    adjusted = holm([*(item.p_value for item in comparisons), *(item.equivalence_p for item in comparisons)])
    count = len(comparisons)
    return [
        decide(dataclasses.replace(item, p_holm=adjusted[index], equivalence_p_holm=adjusted[count + index]), alpha, target_power)
        for index, item in enumerate(comparisons)
    ]


def every_seed(holds: Sequence[bool]) -> str:
    if holds and all(holds):
        return SUPPORTED
    if holds and not any(holds):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """All parts supported -> supported; any part not supported -> not supported; else inconclusive."""
    if verdicts and all(item == SUPPORTED for item in verdicts):
        return SUPPORTED
    if any(item == NOT_SUPPORTED for item in verdicts):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def _sd(value: float, scale: float = 1.0, digits: int = 2) -> str:
    """A standard deviation, or "-" where one seed gives none."""
    return "-" if math.isnan(value) else f"{scale * value:.{digits}f}"


def _seeds(count: int) -> str:
    return f"{count} seed{'s' if count != 1 else ''}"


def _points(value: float) -> str:
    return f"{100 * value:+.2f} points"


def describe(comparison: Comparison) -> str:
    """One comparison in words: effect, interval, the test by name, raw and Holm p, and what decides."""
    low, high = comparison.interval
    interval = "" if math.isnan(low) else f", 95% interval {100 * low:+.2f} to {100 * high:+.2f}"
    test = comparison.test
    if comparison.smallest_p > 0:
        test += f" (smallest p possible with these seeds: {format_p(comparison.smallest_p)})"
    text = (
        f"{comparison.better} vs {comparison.worse}, {comparison.measure.name}: {_points(comparison.difference)}{interval} "
        f"in the claim's favour; {test} p = {format_p(comparison.p_value)}, Holm {format_p(comparison.p_holm)}"
    )
    if not math.isnan(comparison.equivalence_p):
        text += f"; equivalence within ±{100 * comparison.measure.min_effect:g} points (TOST) Holm p = {format_p(comparison.equivalence_p_holm)}"
    if comparison.verdict == INCONCLUSIVE and not math.isnan(comparison.power):
        needed = comparison.seeds_needed if comparison.seeds_needed is not None else "more than 10,000"
        text += (
            f"; power to detect {100 * comparison.measure.min_effect:g} points with {comparison.seeds} seeds: {comparison.power:.2f}, "
            f"{needed} seeds per model would give 0.8"
        )
    return f"{text}: {comparison.verdict}"


def _mcnemar_text(runs: Mapping[str, Sequence[Run]], first: str, second: str) -> str:
    test = mcnemar_exact(runs[first][0].correct, runs[second][0].correct)
    return mcnemar_sentence(first, second, test)


def mcnemar_sentence(first: str, second: str, test: McNemar) -> str:
    return f"main seed, McNemar: {test.only_first} images only {first} gets right, {test.only_second} only {second}, exact p = {format_p(test.p_value)}"


def evaluate_claims(runs: Mapping[str, Sequence[Run]], rules: ReportParams, models: Sequence[str], prior_loss: float = math.nan) -> list[Claim]:
    """The six observations the notebook ends with, in its order, with evidence and a verdict.

    `models` are the main models (keys of `models`); the claims' own names come from `rules.claims`.
    `prior_loss` is the cross-entropy of a model that predicts the test set's class frequencies.
    """
    named = rules.claims
    accuracy, convergence = accuracy_measure(rules), convergence_measure(rules)
    missing = [name for _, name in named.names() if name not in runs]
    if missing:
        quotes = dict(QUOTES)
        return [Claim(number, quotes[number], f"{', '.join(sorted(set(missing)))} has no runs", NOT_EVALUATED) for number in sorted(quotes)]

    # Every comparison behind the claims, tested first, then adjusted together (one family).
    planned = {
        2: [(named.better[0], named.better[1], accuracy)],
        3: [(other, named.stuck, accuracy) for other in models if other != named.stuck],
        4: [(named.faster_convergence[0], named.faster_convergence[1], convergence)],
        5: [(named.best, other, accuracy) for other in models if other != named.best],
        6: [(named.best_optimizer[0], other, accuracy) for other in named.best_optimizer[1:]],
    }
    # A comparison that two claims share (model2 vs model3 in claims 2 and 3) is one test in the family.
    unique = list(dict.fromkeys((better, worse, measure.name) for items in planned.values() for better, worse, measure in items))
    measures = {measure.name: measure for items in planned.values() for _, _, measure in items}
    tested = [compare(runs, better, worse, measures[name]) for better, worse, name in unique]
    decided = dict(zip(unique, adjust(tested, rules.significance_level, rules.power_target), strict=True))
    by_claim = {number: [decided[(better, worse, measure.name)] for better, worse, measure in items] for number, items in planned.items()}

    claims = [_overfits(runs[named.overfits], named.overfits, rules)]
    claims.append(Claim(2, QUOTES[1][1], f"{describe(by_claim[2][0])}; {_mcnemar_text(runs, *named.better)}", by_claim[2][0].verdict, tuple(by_claim[2])))
    claims.append(_stuck(runs, named.stuck, rules, by_claim[3], prior_loss))
    claims.append(_faster(runs, named.faster_convergence, rules, by_claim[4][0]))
    no_overfit = every_seed([not run.overfits(rules.overfit_val_loss_rise) for run in runs[named.best]])
    claims.append(
        Claim(
            5,
            QUOTES[4][1],
            "; ".join(describe(item) for item in by_claim[5]) + f"; no overfitting (the validation-loss sign) at every seed: {no_overfit}",
            combine([*(item.verdict for item in by_claim[5]), no_overfit]),
            tuple(by_claim[5]),
        )
    )
    claims.append(
        Claim(
            6,
            QUOTES[5][1],
            "same layers, one change: " + "; ".join(describe(item) for item in by_claim[6]) + f"; {_mcnemar_text(runs, *named.best_optimizer[:2])}",
            combine([item.verdict for item in by_claim[6]]),
            tuple(by_claim[6]),
        )
    )
    return claims


QUOTES = (
    (1, "Model 1 overfits (train loss 0.008, test loss 0.026)."),
    (2, "Model 2 performed better than Model 3."),
    (3, "Model 3 (SGD) is stuck in a local minimum and is the worst."),
    (4, "he_normal initialisation slightly sped up convergence (Model 4 vs Model 4 with Keras' default)."),
    (5, "Model 4 is the best (highest accuracy, fast convergence, no overfitting)."),
    (6, "Adam did better than the other optimizers (Model 2's layers with Adam vs Adadelta and SGD)."),
)


def _overfits(model_runs: Sequence[Run], name: str, rules: ReportParams) -> Claim:
    rises = spread(model_runs, lambda run: run.val_loss_rise())
    falls = [run.train_loss_still_falls() for run in model_runs]
    gaps = spread(model_runs, lambda run: run.test_loss - run.train_loss_inference)
    result = every_seed([run.overfits(rules.overfit_val_loss_rise) for run in model_runs])
    evidence = (
        f"{name}'s last-epoch validation loss is {100 * rises.mean:.0f}% above its minimum on average (range {100 * rises.low:.0f}-{100 * rises.high:.0f}%, "
        f"{_seeds(len(rises.values))}; the rule: at least {100 * rules.overfit_val_loss_rise:g}%) while its training loss still falls at "
        f"{sum(falls)} of {len(falls)} seeds; supporting: test loss minus inference-mode train loss {gaps.mean:.4f} ± {_sd(gaps.sd, digits=4)}"
    )
    return Claim(1, QUOTES[0][1], evidence, result)


def _stuck(runs: Mapping[str, Sequence[Run]], name: str, rules: ReportParams, comparisons: Sequence[Comparison], prior_loss: float) -> Claim:
    model_runs = runs[name]
    at_chance = every_seed([run.test_accuracy <= rules.chance_accuracy for run in model_runs])
    one_class = sum(run.most_predicted_share == 1.0 for run in model_runs)
    losses = spread(model_runs, lambda run: run.test_loss)
    accuracies = spread(model_runs, lambda run: run.test_accuracy)
    prior = "" if math.isnan(prior_loss) else f" against {prior_loss:.4f} for predicting the class frequencies"
    evidence = (
        f"{name} test accuracy {100 * accuracies.mean:.2f}% (range {100 * accuracies.low:.2f}-{100 * accuracies.high:.2f}%), at most "
        f"{100 * rules.chance_accuracy:g}% at every seed: {at_chance}; it predicts one class for every test image at {one_class} of "
        f"{len(model_runs)} seeds, test loss {losses.mean:.4f}{prior}: it learned the class prior and nothing else. Calling that a local "
        "minimum would take the loss surface at the final weights (a vanishing gradient and no descent direction), which this run does "
        "not measure; worst: " + "; ".join(describe(item) for item in comparisons)
    )
    return Claim(3, QUOTES[2][1], evidence, combine([at_chance, *(item.verdict for item in comparisons)]), tuple(comparisons))


def _faster(runs: Mapping[str, Sequence[Run]], names: Sequence[str], rules: ReportParams, comparison: Comparison) -> Claim:
    window = rules.convergence_window
    described = []
    for name in names:
        area = spread(runs[name], lambda run: run.mean_val_accuracy(window))
        first_loss = spread(runs[name], lambda run: run.loss[0] if run.loss else math.nan)
        epochs = [run.epochs_to(rules.convergence_accuracy) for run in runs[name]]
        listed = ", ".join("never" if math.isinf(epoch) else str(int(epoch)) for epoch in epochs)
        described.append(
            f"{name}: mean validation accuracy over epochs 1-{window} {100 * area.mean:.2f}%, epoch-1 training loss {first_loss.mean:.3f}, "
            f"epochs to {100 * rules.convergence_accuracy:g}% {listed}"
        )
    evidence = f"{describe(comparison)} (decides); shown, not deciding: " + "; ".join(described)
    return Claim(4, QUOTES[3][1], evidence, comparison.verdict, (comparison,))


def evidence_metrics(claims: Sequence[Claim]) -> dict[str, object]:
    """Each claim's verdict and each of its comparisons' numbers, for `reports/claims.json` (a DVC metric)."""

    def number(value: float | None) -> float | None:
        """Six significant digits (p-values keep their size); None where there is no number."""
        return None if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))) else float(f"{float(value):.6g}")

    result: dict[str, object] = {}
    for claim in claims:
        entry: dict[str, object] = {"verdict": claim.verdict}
        for item in claim.comparisons:
            entry[f"{item.better}_vs_{item.worse}"] = {
                "measure": item.measure.name,
                "test": item.test,
                "effect": number(item.difference),
                "interval_low": number(item.interval[0]),
                "interval_high": number(item.interval[1]),
                # A p below what a float holds is written as 0 here and printed as "< 1e-300" in the report.
                "p": number(item.p_value),
                "p_holm": number(item.p_holm),
                "equivalence_p_holm": number(item.equivalence_p_holm),
                "power": number(item.power),
                "seeds_for_80_percent_power": item.seeds_needed,
                "verdict": item.verdict,
            }
        result[f"claim{claim.number}"] = entry
    return result


def claims_table(claims: Sequence[Claim]) -> str:
    lines = ["| # | The notebook says | Evidence from this run | Verdict |", "|--:|---|---|---|"]
    lines += [f"| {claim.number} | {claim.quote} | {claim.evidence} | **{claim.verdict}** |" for claim in claims]
    return "\n".join(lines) + "\n"


def seed_table(runs: Mapping[str, Sequence[Run]], rules: ReportParams) -> str:
    """Per model: mean, sd and range over seeds of test accuracy and loss, loss ratio, convergence."""
    lines = [
        f"| Model | Seeds | Test accuracy, mean ± sd (range) | Test loss, mean ± sd (range) | Test/train loss ratio | "
        f"Epochs to {100 * rules.convergence_accuracy:g}% val. accuracy, per seed |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for name, model_runs in runs.items():
        accuracy = spread(model_runs, lambda run: run.test_accuracy)
        loss = spread(model_runs, lambda run: run.test_loss)
        ratio = spread(model_runs, lambda run: run.loss_ratio)
        epochs = [run.epochs_to(rules.convergence_accuracy) for run in model_runs]
        reached = [epoch for epoch in epochs if not math.isinf(epoch)]
        listed = ", ".join("never" if math.isinf(epoch) else str(int(epoch)) for epoch in epochs)
        seeds = ", ".join(str(run.seed) for run in model_runs)
        lines.append(
            f"| {name} | {seeds} | {100 * accuracy.mean:.2f}% ± {_sd(accuracy.sd, 100)} ({100 * accuracy.low:.2f}-{100 * accuracy.high:.2f}) | "
            f"{loss.mean:.4f} ± {_sd(loss.sd, digits=4)} ({loss.low:.4f}-{loss.high:.4f}) | {ratio.mean:.2f} ± {_sd(ratio.sd)} | "
            f"{listed}{'' if len(reached) == len(epochs) else f' ({len(reached)} of {len(epochs)} reached it)'} |"
        )
    return "\n".join(lines) + "\n"
