"""Observations on the main run, as facts (wording.py says them): which models failed to learn,
which show the overfitting sign, the best model and whether it is distinguishable from the next,
and when each converged; and, across seeds, which runs of each model ended at chance. Nothing here
is hard-coded to the notebook's results: a different run gives different facts. The overfitting sign and the best epoch are overfit.py's, as in the claims.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stages.params.report import ReportParams
from stages.reporting import overfit
from stages.reporting.claims import Run, epochs_to
from stages.reporting.stats import McNemar

# McNemar's exact test between two models of this run, by name (see `stages.reporting.stats`).
PairTest = Callable[[str, str], McNemar]


@dataclasses.dataclass(frozen=True)
class FailedToLearn:
    model: str
    test_accuracy: float
    most_predicted_class: int
    most_predicted_share: float


@dataclasses.dataclass(frozen=True)
class OverfitSign:
    model: str
    sign: overfit.Sign


@dataclasses.dataclass(frozen=True)
class Best:
    best: str
    best_accuracy: float
    runner_up: str | None
    runner_up_accuracy: float
    test: McNemar | None
    significant: bool  # McNemar p below the level and the gap at least the minimum effect


@dataclasses.dataclass(frozen=True)
class Convergence:
    model: str
    reached: float  # first epoch at the threshold, inf if never
    best_epoch: int  # least validation loss
    epochs: int


Observation = FailedToLearn | OverfitSign | Best | Convergence


def observations(
    table: Sequence[Mapping[str, Any]], histories: Mapping[str, Mapping[str, Sequence[float]]], rules: ReportParams, pair_test: PairTest, seed: int
) -> list[Observation]:
    facts: list[Observation] = []
    for row in table:
        name = row["model"]
        if row["test_accuracy"] <= rules.chance_accuracy:
            facts.append(FailedToLearn(name, row["test_accuracy"], row["most_predicted_class"], row["most_predicted_share"]))
            continue
        history = histories[name]
        sign = overfit.sign(
            history["val_loss"], history["loss"], rules.overfit_window, rules.overfit_significance, rules.simulations, rules.simulation_seed + seed
        )
        facts.append(OverfitSign(name, sign))
    ranked = sorted(table, key=lambda row: row["test_accuracy"], reverse=True)
    best = ranked[0]
    if len(ranked) > 1:
        runner_up = ranked[1]
        test = pair_test(best["model"], runner_up["model"])
        gap = best["test_accuracy"] - runner_up["test_accuracy"]
        significant = test.p_value < rules.significance_level and gap >= rules.min_accuracy_difference
        facts.append(Best(best["model"], best["test_accuracy"], runner_up["model"], runner_up["test_accuracy"], test, significant))
    else:
        facts.append(Best(best["model"], best["test_accuracy"], None, math.nan, None, False))
    for row in table:
        history = histories[row["model"]]
        reached = epochs_to(history["val_accuracy"], rules.convergence_accuracy)
        facts.append(Convergence(row["model"], reached, overfit.best_epoch(history["val_loss"]), len(history["val_loss"])))
    return facts


def runs_at_chance(runs: Mapping[str, Sequence[Run]], rules: ReportParams) -> dict[str, tuple[int, ...]]:
    """Per model and ablation, the seeds whose run ended at most at the chance threshold, in the runs' order
    (empty where none did): a run that failed to learn at one seed and learned at the others shows here,
    where the main run's observations, which read one seed, cannot show it."""
    return {name: tuple(run.seed for run in model_runs if run.test_accuracy <= rules.chance_accuracy) for name, model_runs in runs.items()}
