"""The notebook's six closing claims, each decided by a rule declared before the numbers: typed facts
and verdicts, no prose. The rules in words are `wording.rules_text`, their one wording (the report
prints it, the README quotes it); this module applies them.

Every model (and ablation) has one `Run` per seed: the main run at `train.seed` and the replicas.
`compare` tests one `Measure` between two models; `adjust` applies Holm's method over each declared
family, decides with `power.Rule` and gives an inconclusive comparison its simulated
`power.VerdictPower`; `evaluate_claims` assembles the six `Claim`s with their facts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from stages.params.report import ReportParams
from stages.reporting import overfit
from stages.reporting.power import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Rule, VerdictPower, verdict_power
from stages.reporting.stats import McNemar, Spread, difference_interval, holm, mcnemar_exact, mean_difference_test, tost

NOT_EVALUATED = "not evaluated"
MEASURES_DISAGREE = "inconclusive: measures disagree"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MEASURES_DISAGREE, NOT_EVALUATED)
NEVER = math.inf  # epochs to a threshold that a run never reached


def epochs_to(values: Sequence[float], threshold: float) -> float:
    """First epoch (from 1) whose value reaches `threshold`; `NEVER` (infinity) if none did."""
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
        return epochs_to(self.val_accuracy, threshold)

    def mean_val_accuracy(self, epochs: int) -> float:
        """The area under the validation-accuracy curve over the first `epochs` epochs, per epoch."""
        return float(np.mean(self.val_accuracy[:epochs]))

    def mean_train_loss(self, epochs: int) -> float:
        """The area under the training-loss curve over the first `epochs` epochs, per epoch."""
        return float(np.mean(self.loss[:epochs])) if self.loss else math.nan


@dataclasses.dataclass(frozen=True)
class Measure:
    name: str
    value: Callable[[Run], float]
    higher_is_better: bool
    min_effect: float
    unit: str  # "points" (a fraction shown x 100) or "" (shown as is)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One comparative test of a claim: raw, Holm-adjusted in its families, decided."""

    better: str  # the model the claim says is better
    worse: str
    measure: Measure
    difference: float  # in the claim's favour: positive means `better` is ahead
    interval: tuple[float, float]  # 95% Welch interval of the difference, in the claim's favour
    test: str
    p_value: float
    smallest_p: float
    equivalence_p: float  # TOST against +/- the minimum effect
    sd_better: float  # per-seed sample sds of the two arms (the simulation's spreads)
    sd_worse: float
    seeds: int
    p_holm: float = math.nan
    equivalence_p_holm: float = math.nan
    level: float = math.nan  # the raw level Holm's step gives this test in its family
    equivalence_level: float = math.nan
    verdict: str = INCONCLUSIVE
    outlook: VerdictPower | None = None  # inconclusive only

    @property
    def key(self) -> str:
        return f"{self.better}_vs_{self.worse}"


@dataclasses.dataclass(frozen=True)
class Part:
    """A named part of a claim with its own verdict (claim 3's two halves, claim 4's two measures)."""

    name: str
    verdict: str


@dataclasses.dataclass(frozen=True)
class OverfitFacts:
    model: str
    seeds: tuple[int, ...]
    signs: tuple[overfit.Sign, ...]  # one per seed
    gap: Spread  # test loss minus inference-mode train loss, per seed
    verdict: str  # the sign at every seed (claim 1), or its absence at every seed (claim 5)


@dataclasses.dataclass(frozen=True)
class Landscape:
    """The evaluate stage's loss surface at a model's final weights (main seed, training images)."""

    images: int
    loss: float
    gradient_norm: float
    steps: tuple[tuple[float, float], ...]  # (step along the unit negative gradient, loss there)

    @property
    def largest_fall(self) -> tuple[float, float]:
        """(step, how far the loss falls there below the loss at the weights); the best step."""
        step, loss = min(self.steps, key=lambda item: item[1])
        return step, self.loss - loss


@dataclasses.dataclass(frozen=True)
class StuckFacts:
    model: str
    accuracy: Spread
    loss: Spread
    prior_loss: float
    one_class: int  # seeds at which it predicts one class for every test image
    at_chance: str  # verdict: at most the chance threshold at every seed
    landscape: Landscape | None


@dataclasses.dataclass(frozen=True)
class ConvergenceFacts:
    model: str
    val_area: Spread
    train_area: Spread
    epochs_to: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Claim:
    number: int
    verdict: str
    comparisons: tuple[Comparison, ...] = ()
    parts: tuple[Part, ...] = ()
    overfitting: OverfitFacts | None = None
    stuck: StuckFacts | None = None
    convergence: tuple[ConvergenceFacts, ...] = ()
    mcnemar: tuple[tuple[str, str, McNemar], ...] = ()
    missing: tuple[str, ...] = ()  # models without runs (not evaluated)


def spread(runs: Sequence[Run], measure: Callable[[Run], float]) -> Spread:
    return Spread(tuple(float(measure(run)) for run in runs))


def measures(rules: ReportParams) -> dict[str, Measure]:
    window = rules.convergence_window
    return {
        "accuracy": Measure("test accuracy", lambda run: run.test_accuracy, True, rules.min_accuracy_difference, "points"),
        "val_area": Measure(
            f"mean validation accuracy over epochs 1-{window}", lambda run: run.mean_val_accuracy(window), True, rules.min_convergence_difference, "points"
        ),
        "train_area": Measure(
            f"mean training loss over epochs 1-{window}", lambda run: run.mean_train_loss(window), False, rules.min_train_loss_difference, ""
        ),
    }


def compare(runs: Mapping[str, Sequence[Run]], better: str, worse: str, measure: Measure) -> Comparison:
    """The raw test of one comparison; `adjust` adjusts it with the others and decides."""
    sign = 1.0 if measure.higher_is_better else -1.0
    first = [sign * measure.value(run) for run in runs[better]]
    second = [sign * measure.value(run) for run in runs[worse]]
    test = mean_difference_test(first, second)
    return Comparison(
        better=better,
        worse=worse,
        measure=measure,
        difference=float(np.mean(first) - np.mean(second)) + 0.0,
        interval=difference_interval(first, second),
        test=test.name,
        p_value=test.p_value,
        smallest_p=test.smallest_p,
        equivalence_p=tost(first, second, measure.min_effect),
        sd_better=Spread(tuple(first)).sd,
        sd_worse=Spread(tuple(second)).sd,
        seeds=min(len(first), len(second)),
    )


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """The raw level Holm's step-down compares each p with: alpha / (tests not yet passed at its rank)."""
    ranked = sorted(value for value in p_values if not math.isnan(value))
    return [math.nan if math.isnan(value) else alpha / (len(ranked) - ranked.index(value)) for value in p_values]


def adjust(comparisons: Sequence[Comparison], rules: ReportParams) -> list[Comparison]:
    """Holm over each declared family, then each comparison's verdict and, if inconclusive, its outlook."""
    alpha, count = rules.significance_level, len(comparisons)
    raw = [*(item.p_value for item in comparisons), *(item.equivalence_p for item in comparisons)]
    if rules.holm_families == "joint":
        adjusted, levels = holm(raw), holm_levels(raw, alpha)
    else:
        superiority, equivalence = raw[:count], raw[count:]
        adjusted, levels = holm(superiority) + holm(equivalence), holm_levels(superiority, alpha) + holm_levels(equivalence, alpha)
    decided = []
    for index, item in enumerate(comparisons):
        item = dataclasses.replace(
            item, p_holm=adjusted[index], equivalence_p_holm=adjusted[count + index], level=levels[index], equivalence_level=levels[count + index]
        )
        verdict = Rule(alpha, alpha, item.measure.min_effect).decide(item.difference, item.p_holm, item.equivalence_p_holm)
        outlook = None
        if verdict == INCONCLUSIVE:
            rule = Rule(
                alpha if math.isnan(item.level) else item.level,
                alpha if math.isnan(item.equivalence_level) else item.equivalence_level,
                item.measure.min_effect,
            )
            sds = [0.0 if math.isnan(value) else value for value in (item.sd_better, item.sd_worse)]
            effect = rules.power_effect * item.measure.min_effect
            outlook = verdict_power(rule, effect, *sds, item.seeds, rules.power_target, rules.simulations, rules.simulation_seed)
        decided.append(dataclasses.replace(item, verdict=verdict, outlook=outlook))
    return decided


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


def agree(comparisons: Sequence[Comparison]) -> str:
    """One claim on several measures: their common verdict when every one decides the same way;
    "measures disagree" when one decides and another's effect points the other way; else inconclusive."""
    verdicts = {item.verdict for item in comparisons}
    if len(verdicts) == 1 and verdicts <= {SUPPORTED, NOT_SUPPORTED}:
        return verdicts.pop()
    directions = {item.difference > 0 for item in comparisons if item.difference != 0}
    if verdicts & {SUPPORTED, NOT_SUPPORTED} and len(directions) > 1:
        return MEASURES_DISAGREE
    return INCONCLUSIVE


def overfit_signs(model_runs: Sequence[Run], rules: ReportParams) -> tuple[overfit.Sign, ...]:
    return tuple(
        overfit.sign(run.val_loss, run.loss, rules.overfit_window, rules.overfit_significance, rules.simulations, rules.simulation_seed + run.seed)
        for run in model_runs
    )


def overfitting(model_runs: Sequence[Run], name: str, rules: ReportParams, claimed: bool) -> OverfitFacts:
    """The sign at every seed; `claimed` False for a claim that the model does not overfit."""
    signs = overfit_signs(model_runs, rules)
    fires = [item.fires for item in signs]
    verdict = every_seed(fires if claimed else [not value for value in fires])
    return OverfitFacts(name, tuple(run.seed for run in model_runs), signs, spread(model_runs, lambda run: run.test_loss - run.train_loss_inference), verdict)


def local_minimum(landscape: Landscape | None, tolerance: float) -> str:
    """Supported unless a step along the negative gradient lowers the loss by more than `tolerance`."""
    if landscape is None:
        return NOT_EVALUATED
    return NOT_SUPPORTED if landscape.largest_fall[1] > tolerance else SUPPORTED


def evaluate_claims(
    runs: Mapping[str, Sequence[Run]],
    rules: ReportParams,
    models: Sequence[str],
    prior_loss: float = math.nan,
    landscapes: Mapping[str, Landscape] | None = None,
) -> list[Claim]:
    """The six claims the notebook ends with, in its order, each with its facts and verdict.

    `models` are the main models (keys of `models`); the claims' own names come from `rules.claims`.
    `prior_loss` is the cross-entropy of a model that predicts the test set's class frequencies;
    `landscapes` the evaluate stage's loss surfaces, by model.
    """
    named, measure = rules.claims, measures(rules)
    missing = tuple(sorted({name for _, name in named.names() if name not in runs}))
    if missing:
        return [Claim(number, NOT_EVALUATED, missing=missing) for number in range(1, 7)]

    planned = {
        2: [(named.better[0], named.better[1], "accuracy")],
        3: [(other, named.stuck, "accuracy") for other in models if other != named.stuck],
        4: [(named.faster_convergence[0], named.faster_convergence[1], "val_area"), (named.faster_convergence[0], named.faster_convergence[1], "train_area")],
        5: [(named.best, other, "accuracy") for other in models if other != named.best],
        6: [(named.best_optimizer[0], other, "accuracy") for other in named.best_optimizer[1:]],
    }
    # A comparison that two claims share (model2 vs model3 in claims 2 and 3) is one test in the family.
    unique = list(dict.fromkeys(item for items in planned.values() for item in items))
    tested = adjust([compare(runs, better, worse, measure[key]) for better, worse, key in unique], rules)
    decided = dict(zip(unique, tested, strict=True))
    by_claim = {number: tuple(decided[item] for item in items) for number, items in planned.items()}

    def pair(first: str, second: str) -> tuple[str, str, McNemar]:
        return first, second, mcnemar_exact(runs[first][0].correct, runs[second][0].correct)

    overfits = overfitting(runs[named.overfits], named.overfits, rules, claimed=True)
    stuck_runs = runs[named.stuck]
    landscape = (landscapes or {}).get(named.stuck)
    stuck = StuckFacts(
        model=named.stuck,
        accuracy=spread(stuck_runs, lambda run: run.test_accuracy),
        loss=spread(stuck_runs, lambda run: run.test_loss),
        prior_loss=prior_loss,
        one_class=sum(run.most_predicted_share == 1.0 for run in stuck_runs),
        at_chance=every_seed([run.test_accuracy <= rules.chance_accuracy for run in stuck_runs]),
        landscape=landscape,
    )
    worst = Part("at chance and the worst", combine([stuck.at_chance, *(item.verdict for item in by_claim[3])]))
    minimum = Part("a local minimum", local_minimum(landscape, rules.landscape_tolerance))
    speed = tuple(
        ConvergenceFacts(
            name,
            spread(runs[name], measure["val_area"].value),
            spread(runs[name], measure["train_area"].value),
            tuple(run.epochs_to(rules.convergence_accuracy) for run in runs[name]),
        )
        for name in named.faster_convergence
    )
    no_overfit = overfitting(runs[named.best], named.best, rules, claimed=False)
    return [
        Claim(1, overfits.verdict, overfitting=overfits),
        Claim(2, by_claim[2][0].verdict, by_claim[2], mcnemar=(pair(*named.better),)),
        Claim(3, combine([worst.verdict, minimum.verdict]), by_claim[3], parts=(worst, minimum), stuck=stuck),
        Claim(
            4,
            agree(by_claim[4]),
            by_claim[4],
            parts=tuple(Part(item.measure.name, item.verdict) for item in by_claim[4]),
            convergence=speed,
        ),
        Claim(5, combine([*(item.verdict for item in by_claim[5]), no_overfit.verdict]), by_claim[5], overfitting=no_overfit),
        Claim(6, combine([item.verdict for item in by_claim[6]]), by_claim[6], mcnemar=(pair(*named.best_optimizer[:2]),)),
    ]


def read_landscape(data: Mapping[str, object]) -> Landscape:
    """`reports/eval/<model>/landscape.json` as the evaluate stage writes it."""
    steps = tuple((float(item["step"]), float(item["loss"])) for item in data["along_negative_gradient"])
    return Landscape(int(data["images"]), float(data["loss"]), float(data["gradient_norm"]), steps)
