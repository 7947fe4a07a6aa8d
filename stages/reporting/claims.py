"""The notebook's six closing observations, each checked against this run's seeds (pure functions).

Every model (and ablation) has one `Run` per seed: the main run at `train.seed` and the replicas.
For each claim the evidence is the per-seed values of the models it compares, Welch's t-test
across seeds (`stages.reporting.stats.welch`) and, on the main run's seed, McNemar's exact test on the same
test images. A verdict follows rules whose thresholds are `params.yaml: report`:

- a claim that model A is better than B on a measure is **supported** when A's mean over seeds is
  better by at least the minimum effect and Welch's p is below the significance level; **not
  supported** when B is better by that much with such a p, or when the two means differ by less
  than the minimum effect; **inconclusive** otherwise (too few seeds or too much spread to tell);
- a claim about one model (it overfits, it is stuck at chance) is **supported** when it holds at
  every seed, **not supported** when it fails at every seed, **inconclusive** when seeds disagree.

The models each claim is about are named in `params.yaml: report.claims`; the params check rejects
a name that is neither a model nor an ablation, so a rename cannot silently drop a claim.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from stages.params.report import ReportParams
from stages.reporting.stats import McNemar, Spread, mcnemar_exact, welch

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_EVALUATED = "supported", "not supported", "inconclusive", "not evaluated"


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained model at one seed: its final metrics, validation history and test predictions."""

    seed: int
    test_accuracy: float
    test_loss: float
    train_loss: float  # the last epoch's training log, as in the notebook's table
    val_accuracy: tuple[float, ...]
    correct: np.ndarray  # per test image: was the prediction right?

    @property
    def loss_ratio(self) -> float:
        return self.test_loss / self.train_loss if self.train_loss > 0 else math.inf

    def epochs_to(self, threshold: float) -> int:
        """First epoch whose validation accuracy reaches `threshold`; epochs + 1 if none did."""
        return next((epoch for epoch, value in enumerate(self.val_accuracy, start=1) if value >= threshold), len(self.val_accuracy) + 1)


@dataclasses.dataclass(frozen=True)
class Comparison:
    better: str  # the model the claim says is better
    worse: str
    measure: str
    difference: float  # in the claim's favour: positive means `better` is ahead
    p_value: float  # Welch's t-test across seeds
    verdict: str
    no_spread: bool = False  # every seed of both models gave the same value: no test, the values decide


@dataclasses.dataclass(frozen=True)
class Claim:
    number: int
    quote: str
    evidence: str
    verdict: str


def spread(runs: Sequence[Run], measure: Callable[[Run], float]) -> Spread:
    return Spread(tuple(float(measure(run)) for run in runs))


def measures(rules: ReportParams) -> dict[str, tuple[Callable[[Run], float], bool, float]]:
    """Name -> (value of a run, higher is better, minimum effect)."""
    return {
        "test accuracy": (lambda run: run.test_accuracy, True, rules.min_accuracy_difference),
        f"epochs to {100 * rules.convergence_accuracy:g}% validation accuracy": (
            lambda run: run.epochs_to(rules.convergence_accuracy),
            False,
            rules.min_epoch_difference,
        ),
    }


def compare(runs: Mapping[str, Sequence[Run]], better: str, worse: str, measure: str, rules: ReportParams) -> Comparison:
    value, higher_is_better, min_effect = measures(rules)[measure]
    first, second = spread(runs[better], value), spread(runs[worse], value)
    difference = (first.mean - second.mean) * (1 if higher_is_better else -1) + 0.0  # no "-0.0"
    p_value = welch(first.values, second.values)
    no_spread = math.isnan(p_value) and len(first.values) > 1 and len(second.values) > 1
    if no_spread:
        # No spread at all on either side: every seed agrees, so the values decide.
        p_value = 0.0 if difference != 0 else 1.0
    return Comparison(better, worse, measure, difference, p_value, verdict(difference, p_value, min_effect, rules.significance_level), no_spread)


def verdict(difference: float, p_value: float, min_effect: float, alpha: float) -> str:
    """The rule for "better": see the module's docstring."""
    if abs(difference) < min_effect:
        return NOT_SUPPORTED
    if math.isnan(p_value) or p_value >= alpha:
        return INCONCLUSIVE
    return SUPPORTED if difference > 0 else NOT_SUPPORTED


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
    unit = _points(comparison.difference) if comparison.measure == "test accuracy" else f"{comparison.difference:+.1f} epochs"
    if comparison.no_spread:
        p_value = "no spread on either side: every seed gives the same value"
    else:
        p_value = "no test" if math.isnan(comparison.p_value) else f"Welch p = {comparison.p_value:.3g}"
    return f"{comparison.better} vs {comparison.worse}, {comparison.measure}: {unit} in the claim's favour ({p_value}): {comparison.verdict}"


def _mcnemar_text(runs: Mapping[str, Sequence[Run]], first: str, second: str) -> str:
    test = mcnemar_exact(runs[first][0].correct, runs[second][0].correct)
    return mcnemar_sentence(first, second, test)


def mcnemar_sentence(first: str, second: str, test: McNemar) -> str:
    return f"main seed, McNemar: {test.only_first} images only {first} gets right, {test.only_second} only {second}, exact p = {test.p_value:.3g}"


def evaluate_claims(runs: Mapping[str, Sequence[Run]], rules: ReportParams, models: Sequence[str]) -> list[Claim]:
    """The six observations the notebook ends with, in its order, with evidence and a verdict.

    `models` are the main models (keys of `models`); the claims' own names come from `rules.claims`.
    """
    named = rules.claims
    accuracy = "test accuracy"
    speed = next(name for name in measures(rules) if name.startswith("epochs"))
    claims: list[Claim] = []

    def missing(*names: str) -> list[str]:
        return [name for name in names if name not in runs]

    def add(number: int, quote: str, names: tuple[str, ...], build: Callable[[], tuple[str, str]]) -> None:
        absent = missing(*names)
        if absent:
            claims.append(Claim(number, quote, f"{', '.join(absent)} not declared in params.yaml", NOT_EVALUATED))
        else:
            evidence, result = build()
            claims.append(Claim(number, quote, evidence, result))

    def overfits() -> tuple[str, str]:
        ratios = spread(runs[named.overfits], lambda run: run.loss_ratio)
        result = every_seed([ratio >= rules.overfit_loss_ratio for ratio in ratios.values])
        return (
            f"test/train loss ratio {ratios.mean:.2f} ± {_sd(ratios.sd)} (range {ratios.low:.2f}-{ratios.high:.2f}, "
            f"{_seeds(len(ratios.values))}) against the {rules.overfit_loss_ratio:g}x rule",
            result,
        )

    add(1, "Model 1 overfits (train loss 0.008, test loss 0.026).", (named.overfits,), overfits)

    def two_beats_three() -> tuple[str, str]:
        comparison = compare(runs, *named.better, accuracy, rules)
        return f"{describe(comparison)}; {_mcnemar_text(runs, *named.better)}", comparison.verdict

    add(2, "Model 2 performed better than Model 3.", named.better, two_beats_three)

    def three_stuck_and_worst() -> tuple[str, str]:
        stuck = every_seed([run.test_accuracy <= rules.chance_accuracy for run in runs[named.stuck]])
        others = [name for name in models if name != named.stuck and name in runs]
        comparisons = [compare(runs, other, named.stuck, accuracy, rules) for other in others]
        worst = combine([comparison.verdict for comparison in comparisons])
        accuracies = spread(runs[named.stuck], lambda run: run.test_accuracy)
        return (
            f"{named.stuck} test accuracy {100 * accuracies.mean:.2f}% (range {100 * accuracies.low:.2f}-{100 * accuracies.high:.2f}%), "
            f"at most {100 * rules.chance_accuracy:g}% at every seed: {stuck}; worst: " + "; ".join(describe(comparison) for comparison in comparisons),
            combine([stuck, worst]),
        )

    add(3, "Model 3 (SGD) is stuck in a local minimum and is the worst.", (named.stuck, *models), three_stuck_and_worst)

    def he_normal_faster() -> tuple[str, str]:
        comparison = compare(runs, *named.faster_convergence, speed, rules)
        epochs = {name: spread(runs[name], lambda run: run.epochs_to(rules.convergence_accuracy)).values for name in named.faster_convergence}
        listing = "; ".join(f"{name}: {', '.join(str(int(value)) for value in values)}" for name, values in epochs.items())
        reached = [run for name in named.faster_convergence for run in runs[name] if run.epochs_to(rules.convergence_accuracy) <= len(run.val_accuracy)]
        if not reached:
            return f"epochs per seed ({listing}): neither reached {100 * rules.convergence_accuracy:g}% at any seed", INCONCLUSIVE
        return f"epochs per seed ({listing}); {describe(comparison)}", comparison.verdict

    add(4, "he_normal initialisation slightly sped up convergence (Model 4 vs Model 4 with Keras' default).", named.faster_convergence, he_normal_faster)

    def four_best() -> tuple[str, str]:
        comparisons = [compare(runs, named.best, other, accuracy, rules) for other in models if other != named.best and other in runs]
        no_overfit = every_seed([run.loss_ratio < rules.overfit_loss_ratio for run in runs[named.best]])
        return (
            "; ".join(describe(comparison) for comparison in comparisons) + f"; no overfitting at every seed: {no_overfit}",
            combine([*(comparison.verdict for comparison in comparisons), no_overfit]),
        )

    add(5, "Model 4 is the best (highest accuracy, fast convergence, no overfitting).", (named.best, *models), four_best)

    def adam_best() -> tuple[str, str]:
        comparisons = [compare(runs, named.best_optimizer[0], other, accuracy, rules) for other in named.best_optimizer[1:]]
        return (
            "same layers, one change: " + "; ".join(describe(comparison) for comparison in comparisons) + f"; {_mcnemar_text(runs, *named.best_optimizer[:2])}",
            combine([comparison.verdict for comparison in comparisons]),
        )

    add(6, "Adam did better than the other optimizers (Model 2's layers with Adam vs Adadelta and SGD).", named.best_optimizer, adam_best)
    return claims


def claims_table(claims: Sequence[Claim]) -> str:
    lines = ["| # | The notebook says | Evidence from this run | Verdict |", "|--:|---|---|---|"]
    lines += [f"| {claim.number} | {claim.quote} | {claim.evidence} | **{claim.verdict}** |" for claim in claims]
    return "\n".join(lines) + "\n"


def seed_table(runs: Mapping[str, Sequence[Run]], rules: ReportParams) -> str:
    """Per model: mean, sd and range over seeds of test accuracy and loss, loss ratio, convergence."""
    lines = [
        f"| Model | Seeds | Test accuracy, mean ± sd (range) | Test loss, mean ± sd (range) | Test/train loss ratio | "
        f"Epochs to {100 * rules.convergence_accuracy:g}% val. accuracy |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for name, model_runs in runs.items():
        accuracy = spread(model_runs, lambda run: run.test_accuracy)
        loss = spread(model_runs, lambda run: run.test_loss)
        ratio = spread(model_runs, lambda run: run.loss_ratio)
        epochs = spread(model_runs, lambda run: run.epochs_to(rules.convergence_accuracy))
        seeds = ", ".join(str(run.seed) for run in model_runs)
        lines.append(
            f"| {name} | {seeds} | {100 * accuracy.mean:.2f}% ± {_sd(accuracy.sd, 100)} ({100 * accuracy.low:.2f}-{100 * accuracy.high:.2f}) | "
            f"{loss.mean:.4f} ± {_sd(loss.sd, digits=4)} ({loss.low:.4f}-{loss.high:.4f}) | {ratio.mean:.2f} ± {_sd(ratio.sd)} | "
            f"{epochs.mean:.1f} ({int(epochs.low)}-{int(epochs.high)}) |"
        )
    return "\n".join(lines) + "\n"
