"""The report's results as one typed object: what `analyse` computes from the loaded inputs, and the
two DVC metrics (`claims.json`, `summary.json`) as dumps of it. report.md is rendered from the same
object (wording.py), so a number appears in the files and the text from one computation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stages.params.report import ReportParams
from stages.params.training import ModelSpec, TrainingParams
from stages.reporting import claims as claim_rules
from stages.reporting import summary
from stages.reporting.claims import Claim, Landscape, Run
from stages.reporting.decide import Comparison, has_failed
from stages.reporting.observations import Observation, observations, runs_at_chance
from stages.reporting.power import Outlook
from stages.reporting.stats import McNemar, Spread, holm, mcnemar_exact, wilson_interval


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Everything the report reads, loaded (stages/report.py's `load`)."""

    rules: ReportParams
    params: TrainingParams
    specs: Mapping[str, ModelSpec]
    metrics: Mapping[str, Mapping[str, Any]]
    fits: Mapping[str, Mapping[str, Any]]
    histories: Mapping[str, Mapping[str, Sequence[float]]]
    train: Mapping[str, np.ndarray]  # x, y
    test: Mapping[str, np.ndarray]
    runs: Mapping[str, Sequence[Run]]
    confusions: Mapping[str, Sequence[Mapping[str, int]]]
    landscapes: Mapping[str, Landscape]
    records: Sequence[Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """A main run's test accuracy with its 95% Wilson interval."""

    model: str
    accuracy: float
    right: int
    images: int
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class PairTest:
    first: str
    second: str
    test: McNemar
    p_holm: float


@dataclasses.dataclass(frozen=True)
class Results:
    table: tuple[dict[str, Any], ...]  # the notebook's comparison table, one row per main model
    accuracy: Mapping[str, Spread]  # test accuracy over the seeds whose run trained, every model and ablation
    loss: Mapping[str, Spread]  # the same runs' test loss
    intervals: tuple[Accuracy, ...]
    pairs: tuple[PairTest, ...]
    claims: tuple[Claim, ...]
    observations: tuple[Observation, ...]
    at_chance: Mapping[str, tuple[int, ...]]  # per model and ablation, the seeds whose run ended at chance
    seeds: Mapping[str, tuple[int, ...]]  # per model and ablation, its runs' seeds (main seed first)
    best: str  # the most accurate main model on the main run
    misclassified: tuple[int, ...]  # its first wrong test images (as many as report.misclassified_digits)
    misclassified_total: int
    prior_loss: float


def prior_cross_entropy(labels: np.ndarray) -> float:
    """The test loss of a model that predicts the test set's class frequencies for every image."""
    frequencies = np.bincount(labels, minlength=10) / len(labels)
    present = frequencies[frequencies > 0]
    return float(-(present * np.log(present)).sum())


def pair_tests(runs: Mapping[str, Sequence[Run]]) -> tuple[PairTest, ...]:
    """McNemar's exact test on the main seed for every pair of models and ablations, Holm over the pairs."""
    names = list(runs)
    pairs = [
        (first, second, mcnemar_exact(runs[first][0].correct, runs[second][0].correct)) for index, first in enumerate(names) for second in names[index + 1 :]
    ]
    adjusted = holm([test.p_value for _, _, test in pairs])
    return tuple(PairTest(first, second, test, p) for (first, second, test), p in zip(pairs, adjusted, strict=True))


def analyse(inputs: Inputs) -> Results:
    rules, runs = inputs.rules, inputs.runs
    table = tuple(summary.rows(inputs.specs, inputs.metrics, inputs.fits))
    pairs = pair_tests(runs)
    by_pair = {(item.first, item.second): item.test for item in pairs}

    def pair_test(first: str, second: str) -> McNemar:
        if (first, second) in by_pair:
            return by_pair[(first, second)]
        swapped = by_pair[(second, first)]
        return McNemar(swapped.only_second, swapped.only_first, swapped.p_value)

    intervals = []
    for name, model_runs in runs.items():
        correct = model_runs[0].correct
        right = int(correct.sum())
        low, high = wilson_interval(right, len(correct))
        intervals.append(Accuracy(name, model_runs[0].test_accuracy, right, len(correct), low, high))
    prior = prior_cross_entropy(inputs.test["y"])
    trained = {name: [run for run in model_runs if not has_failed(run, rules.chance_accuracy)] for name, model_runs in runs.items()}
    decided = claim_rules.evaluate_claims(runs, rules, list(inputs.specs), prior, inputs.landscapes)
    best = max(table, key=lambda row: row["test_accuracy"])["model"]
    rows = inputs.confusions[best]
    wrong = [index for index, row in enumerate(rows) if row["actual"] != row["predicted"]]
    return Results(
        table=table,
        accuracy={name: claim_rules.spread(trained[name], lambda run: run.test_accuracy) for name in runs},
        loss={name: claim_rules.spread(trained[name], lambda run: run.test_loss) for name in runs},
        intervals=tuple(intervals),
        pairs=pairs,
        claims=tuple(decided),
        observations=tuple(observations(table, inputs.histories, rules, pair_test, inputs.params.train.seed)),
        at_chance=runs_at_chance(runs, rules),
        seeds={name: tuple(run.seed for run in model_runs) for name, model_runs in runs.items()},
        best=best,
        misclassified=tuple(wrong[: rules.misclassified_digits]),
        misclassified_total=len(wrong),
        prior_loss=prior,
    )


def _number(value: float | None) -> float | None:
    """Six significant digits (p-values keep their size); None where there is no number."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None
    return float(f"{float(value):.6g}")


def outlook_json(item: Outlook) -> dict[str, object]:
    return {
        "effect": _number(item.effect),
        "seeds": item.seeds,
        "supported": _number(item.supported),
        "not_supported": _number(item.not_supported),
        "expected_verdict": item.verdict,
        "seeds_for_target": item.seeds_needed,
        "searched_up_to": item.most,
    }


def comparison_json(item: Comparison) -> dict[str, object]:
    """One comparison's numbers: the trained runs' test, the failure rates' test, the verdict, the outlooks."""
    failures = item.failures
    return {
        "test": item.test,
        "trained_runs": [len(item.trained_better.values), len(item.trained_worse.values)],
        "effect": _number(item.difference),
        "interval_low": _number(item.interval[0]),
        "interval_high": _number(item.interval[1]),
        "p": _number(item.p_value),
        "p_holm": _number(item.p_holm),
        "equivalence_p_holm": _number(item.equivalence_p_holm),
        "holm_level": _number(item.level),
        "trained_outcome": item.outcome,
        "failed_runs": [failures.better, failures.worse],
        "runs": [failures.better_runs, failures.worse_runs],
        "failure_test": failures.test,
        "failure_p": _number(failures.p_value),
        "failure_p_holm": _number(failures.p_holm),
        "failure_outcome": failures.outcome,
        "verdict": item.verdict,
        "outlook_at_observed": outlook_json(item.outlooks[0]) if item.outlooks else None,
        "outlook_at_zero": outlook_json(item.outlooks[1]) if item.outlooks else None,
    }


def claims_json(results: Results) -> dict[str, object]:
    """Each claim's verdict, its parts' verdicts and every number behind them (`reports/claims.json`).
    A p below what a float holds is written as 0 here and printed as "< 1e-300" in the report."""
    document: dict[str, object] = {}
    for claim in results.claims:
        entry: dict[str, object] = {"says": claim.spec.says, "verdict": claim.verdict}
        if claim.parts:
            entry["parts"] = {part.name: part.verdict for part in claim.parts}
        comparisons = {f"{item.key}: {item.measure.name}": comparison_json(item) for item in claim.comparisons}
        if comparisons:
            entry["comparisons"] = comparisons
        if claim.overfitting is not None:
            facts = claim.overfitting
            entry["overfitting"] = {
                "combined_p": _number(facts.combined_p),
                "mean_slope": _number(facts.slope.mean) if facts.slope.values else None,
                "below_bound_p": _number(facts.below_bound_p),
                "verdict": facts.verdict,
                "seeds": {
                    f"seed_{seed}": {
                        "from_epoch": sign.validation.first_epoch,
                        "val_loss_slope": _number(sign.validation.slope),
                        "p_rising": _number(sign.validation.p_rising),
                        "calibrated_p": _number(sign.calibrated_p),
                        "train_loss_slope": _number(sign.training.slope),
                        "fires": sign.fires,
                        "false_alarm": _number(sign.false_alarm),
                    }
                    for seed, sign in zip(facts.seeds, facts.signs, strict=True)
                },
            }
        if claim.stuck is not None:
            stuck = claim.stuck
            entry["failed_runs"] = {
                "failed": stuck.failed,
                "runs": len(stuck.accuracy.values),
                "interval_low": _number(stuck.failed_interval[0]),
                "interval_high": _number(stuck.failed_interval[1]),
                "p_most": _number(stuck.most_p),
            }
            if stuck.landscape is not None:
                landscape = stuck.landscape
                step, fall = landscape.largest_fall
                entry["landscape"] = {
                    "loss": _number(landscape.loss),
                    "gradient_norm": _number(landscape.gradient_norm),
                    "best_step": step,
                    "fall": _number(fall),
                }
        document[f"claim{claim.number}"] = entry
    return document


def metrics_json(results: Results, main: Sequence[str]) -> dict[str, object]:
    """`reports/metrics.json`, the report's one DVC metric: per model the few numbers a user compares
    (main-run test accuracy and loss; over seeds, the trained runs' accuracy mean and sd and the failed
    runs), then each claim's verdict. Everything else is in summary.json and claims.json."""
    table = {row["model"]: row for row in results.table}
    document: dict[str, object] = {}
    for name, trained in results.accuracy.items():
        entry: dict[str, object] = {}
        if name in main:
            entry["acc"] = _number(table[name]["test_accuracy"])
            entry["loss"] = _number(table[name]["test_loss"])
        entry["acc_mean"] = _number(trained.mean) if trained.values else None
        entry["acc_sd"] = _number(trained.sd) if len(trained.values) > 1 else None
        entry["failed"] = len(results.at_chance[name])
        document[name] = entry
    document["claims"] = {str(claim.number): claim.verdict for claim in results.claims}
    return document


def summary_json(results: Results) -> dict[str, dict[str, Any]]:
    """`reports/summary.json`: the main run's metrics per model, the mean and sd over the seeds whose run
    trained, and how many of the seeds' runs ended at chance."""
    found = summary.metrics_by_model(list(results.table), results.accuracy, results.loss, results.at_chance)
    for name, entry in found.items():
        entry["seeds"] = len(results.seeds[name])
    return found
