"""The claims table: verdicts follow the numbers and the thresholds in params.yaml `report`."""

from __future__ import annotations

import dataclasses

import numpy as np

from stages.params.report import ReportParams
from stages.reporting import claims
from stages.reporting.claims import INCONCLUSIVE, NOT_EVALUATED, NOT_SUPPORTED, SUPPORTED, Run
from tests.conftest import REPORT_RULES as RULES

IMAGES = 10_000


def run(seed: int, accuracy: float, test_loss: float = 0.03, train_loss: float = 0.01, first_epoch_at_98: int = 2) -> Run:
    correct = np.zeros(IMAGES, dtype=bool)
    correct[: round(accuracy * IMAGES)] = True
    history = tuple(0.97 if epoch < first_epoch_at_98 else 0.99 for epoch in range(1, 21))
    return Run(seed, accuracy, test_loss, train_loss, history, correct)


def notebook_like() -> dict[str, list[Run]]:
    """Three seeds each, shaped like the notebook's story."""
    return {
        "model1": [run(0, 0.9933, 0.028, 0.009), run(1, 0.9930, 0.027, 0.009), run(2, 0.9936, 0.029, 0.010)],
        "model2": [run(0, 0.9776, 0.07, 0.10, 5), run(1, 0.9781, 0.07, 0.10, 6), run(2, 0.9770, 0.07, 0.10, 5)],
        "model3": [run(0, 0.1135, 2.30, 2.30, 21), run(1, 0.1135, 2.30, 2.30, 21), run(2, 0.1028, 2.30, 2.30, 21)],
        "model4": [run(0, 0.9950, 0.020, 0.012, 1), run(1, 0.9953, 0.019, 0.012, 1), run(2, 0.9951, 0.021, 0.012, 1)],
        "model4_glorot": [run(0, 0.9945, 0.020, 0.012, 3), run(1, 0.9940, 0.020, 0.012, 3), run(2, 0.9946, 0.020, 0.012, 4)],
        "model2_adam": [run(0, 0.9890, 0.04, 0.03, 2), run(1, 0.9893, 0.04, 0.03, 2), run(2, 0.9888, 0.04, 0.03, 2)],
    }


def verdicts(runs: dict[str, list[Run]], rules: ReportParams = RULES) -> dict[int, str]:
    return {claim.number: claim.verdict for claim in claims.evaluate_claims(runs, rules)}


def test_a_run_shaped_like_the_notebook_supports_its_claims() -> None:
    assert verdicts(notebook_like()) == {1: SUPPORTED, 2: SUPPORTED, 3: SUPPORTED, 4: SUPPORTED, 5: SUPPORTED, 6: SUPPORTED}


def test_overlapping_seeds_make_best_inconclusive_and_tiny_gaps_not_supported() -> None:
    runs = notebook_like()
    # Model 4 ahead of Model 1 on average but the seeds overlap: no significant difference.
    runs["model4"] = [run(0, 0.9925, 0.026, 0.012, 1), run(1, 0.9975, 0.019, 0.012, 1), run(2, 0.9940, 0.022, 0.012, 1)]
    assert verdicts(runs)[5] == INCONCLUSIVE
    # Now within the minimum effect of Model 1 at every seed: "better" is not supported.
    runs["model4"] = [run(seed, value.test_accuracy + 0.0002, 0.02, 0.012, 1) for seed, value in enumerate(runs["model1"])]
    assert verdicts(runs)[5] == NOT_SUPPORTED


def test_thresholds_from_params_change_verdicts() -> None:
    runs = notebook_like()
    # Model 1's loss ratio is about 3: a 4x rule says it does not overfit.
    assert verdicts(runs, dataclasses.replace(RULES, overfit_loss_ratio=4.0))[1] == NOT_SUPPORTED
    # he_normal reaches 98% about 2.3 epochs sooner: a 3-epoch minimum effect makes that too small.
    assert verdicts(runs, dataclasses.replace(RULES, min_epoch_difference=3))[4] == NOT_SUPPORTED
    # A stricter significance level turns the borderline Adadelta-vs-Adam gap inconclusive.
    runs["model2_adam"] = [run(0, 0.9795, 0.07, 0.10), run(1, 0.9805, 0.07, 0.10), run(2, 0.9790, 0.07, 0.10)]
    assert verdicts(runs)[6] == SUPPORTED
    assert verdicts(runs, dataclasses.replace(RULES, significance_level=0.001))[6] == INCONCLUSIVE


def test_seeds_that_disagree_and_models_that_are_missing() -> None:
    runs = notebook_like()
    runs["model1"][1] = run(1, 0.9930, 0.015, 0.009)  # ratio 1.7 at one seed
    runs.pop("model4_glorot")
    result = verdicts(runs)
    assert result[1] == INCONCLUSIVE
    assert result[4] == NOT_EVALUATED
    # Model 3 learning at every seed makes "stuck and worst" not supported.
    runs["model3"] = [run(seed, 0.90 + seed / 1000, 0.3, 0.3, 21) for seed in range(3)]
    assert verdicts(runs)[3] == NOT_SUPPORTED


def test_claims_table_has_six_rows_with_numbers() -> None:
    table = claims.claims_table(claims.evaluate_claims(notebook_like(), RULES))
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert len(rows) == 6
    assert "Welch p = " in rows[1] and "McNemar: " in rows[1]
    assert "test/train loss ratio 3.00 ± 0.11 (range 2.90-3.11, 3 seeds)" in rows[0]
