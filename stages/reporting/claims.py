"""The notebook's six closing claims, each declared once (`CLAIMS`: its number, the notebook's words,
the measures and the rule that decides it) and decided by rules declared before the numbers: typed
facts and verdicts, no prose. The rules in words are `wording.rules_text` (the report prints it,
docs/statistics.md quotes it); this module applies them.

Every model (and ablation) has one `Run` per seed: the main run at `train.seed` and the replicas.
Comparisons between models go through the decision engine (`decide.py`, shared with the `compare`
command), one Holm family per claim (`report.families`); a per-seed property (overfitting) is
decided by combining the seeds' calibrated p-values; `evaluate_claims` assembles the six `Claim`s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from stages.params.report import ReportParams
from stages.reporting import overfit
from stages.reporting.decide import NOT_EVALUATED, Comparison, Measure, agree, combine, decide, has_failed, measure_pair
from stages.reporting.power import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from stages.reporting.stats import McNemar, Spread, below_bound, clopper_pearson, combine_p, majority_test, mcnemar_exact

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
class ClaimSpec:
    """One of the notebook's claims, declared once: what it says, which `report.claims` entry names its
    models, what it measures and which rule decides it (`RULES`, worded in `wording.rules_text`)."""

    number: int
    says: str  # the notebook's words
    models: str  # the field of `report.claims`
    measures: tuple[str, ...]  # keys of `measures()`
    rule: str  # a key of RULES


RULES = {
    "overfits": "the overfitting sign, seeds combined",
    "better": "better than each named model",
    "stuck": "fails in most runs, the worst, and a local minimum",
    "agree": "faster on both measures",
    "best": "better than every other main model, and no overfitting",
}

CLAIMS = (
    ClaimSpec(1, "Model 1 overfits (train loss 0.008, test loss 0.026).", "overfits", (), "overfits"),
    ClaimSpec(2, "Model 2 performed better than Model 3.", "better", ("accuracy",), "better"),
    ClaimSpec(3, "Model 3 (SGD) is stuck in a local minimum and is the worst.", "stuck", ("accuracy",), "stuck"),
    ClaimSpec(
        4,
        "he_normal initialisation slightly sped up convergence (Model 4 vs Model 4 with Keras' default).",
        "faster_convergence",
        ("val_area", "train_area"),
        "agree",
    ),
    ClaimSpec(5, "Model 4 is the best (highest accuracy, fast convergence, no overfitting).", "best", ("accuracy",), "best"),
    ClaimSpec(6, "Adam did better than the other optimizers (Model 2's layers with Adam vs Adadelta and SGD).", "best_optimizer", ("accuracy",), "better"),
)


@dataclasses.dataclass(frozen=True)
class Part:
    """A named part of a claim with its own verdict (claim 3's three, claim 4's two measures, claim 5's two)."""

    name: str
    verdict: str


@dataclasses.dataclass(frozen=True)
class OverfitFacts:
    """The overfitting sign of one model across its trained runs, seeds combined."""

    model: str
    seeds: tuple[int, ...]
    signs: tuple[overfit.Sign, ...]  # one per seed
    gap: Spread  # test loss minus inference-mode train loss, per seed
    combined_p: float  # the seeds' calibrated p-values combined (report.combine_seeds)
    slope: Spread  # the validation loss's slope after its lowest stretch, per seed
    below_bound_p: float  # one-sided t-test: the mean slope is below report.overfit_slope_bound
    verdict: str  # of "it overfits" (claim 1) or "it does not" (claim 5)


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
    failed: int  # runs at most the chance threshold
    failed_interval: tuple[float, float]  # exact 95% interval of its failure rate
    most_p: float  # one-sided exact binomial p: it fails in more than half its runs
    at_chance: str  # verdict of "it fails in most runs"
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

    @property
    def spec(self) -> ClaimSpec:
        return next(item for item in CLAIMS if item.number == self.number)


def spread(runs: Sequence[Run], measure: Callable[[Run], float]) -> Spread:
    return Spread(tuple(float(measure(run)) for run in runs))


def measures(rules: ReportParams) -> dict[str, Measure]:
    window = rules.convergence_window
    return {
        "accuracy": Measure("test accuracy", lambda run: run.test_accuracy, True, rules.min_accuracy_difference, "points", (0.0, 1.0)),
        "loss": Measure("test loss", lambda run: run.test_loss, False, rules.min_loss_difference, ""),
        "val_area": Measure(
            f"mean validation accuracy over epochs 1-{window}",
            lambda run: run.mean_val_accuracy(window),
            True,
            rules.min_convergence_difference,
            "points",
            (0.0, 1.0),
        ),
        "train_area": Measure(
            f"mean training loss over epochs 1-{window}", lambda run: run.mean_train_loss(window), False, rules.min_train_loss_difference, ""
        ),
    }


def overfit_signs(model_runs: Sequence[Run], rules: ReportParams) -> tuple[overfit.Sign, ...]:
    return tuple(
        overfit.sign(run.val_loss, run.loss, rules.overfit_window, rules.overfit_significance, rules.simulations, rules.simulation_seed + run.seed)
        for run in model_runs
    )


def overfitting(model_runs: Sequence[Run], name: str, rules: ReportParams, claimed: bool) -> OverfitFacts:
    """The sign across the trained runs: "it overfits" when the seeds' combined calibrated p is below the
    level; "it does not" when the seeds' mean slope is shown below the declared bound; `claimed` False
    for a claim that the model does not overfit."""
    trained = [run for run in model_runs if not has_failed(run, rules.chance_accuracy)]
    signs = overfit_signs(trained, rules)
    alpha = rules.significance_level
    combined = combine_p([sign.calibrated_p for sign in signs], rules.combine_seeds)
    slope = Spread(tuple(sign.validation.slope for sign in signs if not math.isnan(sign.validation.slope)))
    bounded = below_bound(slope.values, rules.overfit_slope_bound)
    overfits, does_not = combined < alpha, bounded < alpha
    if claimed:
        verdict = SUPPORTED if overfits else NOT_SUPPORTED if does_not else INCONCLUSIVE
    else:
        verdict = SUPPORTED if does_not and not overfits else NOT_SUPPORTED if overfits else INCONCLUSIVE
    gap = spread(trained, lambda run: run.test_loss - run.train_loss_inference)
    return OverfitFacts(name, tuple(run.seed for run in trained), signs, gap, combined, slope, bounded, verdict)


def local_minimum(landscape: Landscape | None, tolerance: float) -> str:
    """Supported unless a step along the negative gradient lowers the loss by more than `tolerance`."""
    if landscape is None:
        return NOT_EVALUATED
    return NOT_SUPPORTED if landscape.largest_fall[1] > tolerance else SUPPORTED


def fails_in_most_runs(failed: int, runs: int, alpha: float) -> tuple[float, str]:
    """Exact binomial tests against one half: supported when it fails in more than half its runs, not
    supported when in fewer; with its one-sided p."""
    more, fewer = majority_test(failed, runs)
    return more, SUPPORTED if more < alpha else NOT_SUPPORTED if fewer < alpha else INCONCLUSIVE


def planned(spec: ClaimSpec, rules: ReportParams, models: Sequence[str]) -> list[tuple[str, str, str]]:
    """(claimed better, other, measure key) of each comparison the claim makes."""
    named = getattr(rules.claims, spec.models)
    if spec.rule == "stuck":
        return [(other, named, key) for other in models if other != named for key in spec.measures]
    if spec.rule == "best":
        return [(named, other, key) for other in models if other != named for key in spec.measures]
    if spec.rule in ("better", "agree"):
        return [(named.model, other, key) for other in named.than for key in spec.measures]
    return []


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
    named, measure, alpha = rules.claims, measures(rules), rules.significance_level
    missing = tuple(sorted({name for _, name in named.names() if name not in runs}))
    if missing:
        return [Claim(spec.number, NOT_EVALUATED, missing=missing) for spec in CLAIMS]

    # Each claim's comparisons are one Holm family (per kind of test), or every claim's together.
    plans = {spec.number: planned(spec, rules, models) for spec in CLAIMS}
    labelled = list(dict.fromkeys((number if rules.families == "per_claim" else 0, *item) for number, items in plans.items() for item in items))
    raw = [measure_pair(better, runs[better], worse, runs[worse], measure[key], rules) for _, better, worse, key in labelled]
    decided = dict(zip(labelled, decide(raw, [label for label, *_ in labelled], rules), strict=True))
    by_claim = {number: tuple(decided[(number if rules.families == "per_claim" else 0, *item)] for item in items) for number, items in plans.items()}

    def pair(first: str, second: str) -> tuple[str, str, McNemar]:
        return first, second, mcnemar_exact(runs[first][0].correct, runs[second][0].correct)

    claims = []
    for spec in CLAIMS:
        comparisons = by_claim[spec.number]
        verdicts = [item.verdict for item in comparisons]
        if spec.rule == "overfits":
            facts = overfitting(runs[named.overfits], named.overfits, rules, claimed=True)
            claims.append(Claim(spec.number, facts.verdict, overfitting=facts))
        elif spec.rule == "better":
            chosen = getattr(named, spec.models)
            claims.append(Claim(spec.number, combine(verdicts), comparisons, mcnemar=tuple(pair(chosen.model, other) for other in chosen.than)))
        elif spec.rule == "stuck":
            stuck_runs = runs[named.stuck]
            failed = sum(has_failed(run, rules.chance_accuracy) for run in stuck_runs)
            most_p, at_chance = fails_in_most_runs(failed, len(stuck_runs), alpha)
            landscape = (landscapes or {}).get(named.stuck)
            stuck = StuckFacts(
                model=named.stuck,
                accuracy=spread(stuck_runs, lambda run: run.test_accuracy),
                loss=spread(stuck_runs, lambda run: run.test_loss),
                prior_loss=prior_loss,
                one_class=sum(run.most_predicted_share == 1.0 for run in stuck_runs),
                failed=failed,
                failed_interval=clopper_pearson(failed, len(stuck_runs)),
                most_p=most_p,
                at_chance=at_chance,
                landscape=landscape,
            )
            parts = (
                Part("fails in most runs", at_chance),
                Part("the worst", combine(verdicts)),
                Part("a local minimum", local_minimum(landscape, rules.landscape_tolerance)),
            )
            claims.append(Claim(spec.number, combine([part.verdict for part in parts]), comparisons, parts=parts, stuck=stuck))
        elif spec.rule == "agree":
            chosen = named.faster_convergence
            speed = tuple(
                ConvergenceFacts(
                    name,
                    spread(runs[name], measure["val_area"].value),
                    spread(runs[name], measure["train_area"].value),
                    tuple(run.epochs_to(rules.convergence_accuracy) for run in runs[name]),
                )
                for name in (chosen.model, *chosen.than)
            )
            parts = tuple(Part(item.measure.name, item.verdict) for item in comparisons)
            claims.append(Claim(spec.number, agree(verdicts), comparisons, parts=parts, convergence=speed))
        elif spec.rule == "best":
            facts = overfitting(runs[named.best], named.best, rules, claimed=False)
            parts = (Part("the most accurate", combine(verdicts)), Part("no overfitting", facts.verdict))
            claims.append(Claim(spec.number, combine([part.verdict for part in parts]), comparisons, parts=parts, overfitting=facts))
        else:
            raise ValueError(f"claim {spec.number}: no rule {spec.rule!r}; known: {', '.join(RULES)}")
    return claims


def read_landscape(data: Mapping[str, object]) -> Landscape:
    """`reports/eval/<model>/landscape.json` as the evaluate stage writes it."""
    steps = tuple((float(item["step"]), float(item["loss"])) for item in data["along_negative_gradient"])
    return Landscape(int(data["images"]), float(data["loss"]), float(data["gradient_norm"]), steps)
