"""Observations are facts that follow the metrics and the rules, not the notebook's text; wording.py says them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stages.params.training import load_training
from stages.reporting import observations, summary, wording
from stages.reporting.claims import epochs_to
from stages.reporting.observations import Best, Convergence, FailedToLearn, OverfitSign
from stages.reporting.stats import mcnemar_exact
from tests.conftest import REPORT_RULES as RULES

REPO = Path(__file__).resolve().parents[1]


def pair_test_for(results: dict[str, tuple[float, float, float]]):
    """McNemar on 10,000 images where each model gets the first accuracy * 10,000 right (nested errors)."""

    def correct(name: str) -> np.ndarray:
        flags = np.zeros(10_000, dtype=bool)
        flags[: round(results[name][0] * 10_000)] = True
        return flags

    return lambda first, second: mcnemar_exact(correct(first), correct(second))


def table_for(results: dict[str, tuple[float, float, float]]) -> list[dict]:
    """Rows from (test accuracy, test loss, last-epoch train loss) per model."""
    training = load_training(REPO / "params.yaml")
    models = {name: training.spec(name) for name in training.models}
    metrics, fits = {}, {}
    for name, (accuracy, test_loss, train_loss) in results.items():
        metrics[name] = {
            "test_accuracy": accuracy,
            "test_loss": test_loss,
            "train_accuracy": 0.99,
            "train_loss": train_loss,
            "train_accuracy_inference": 0.99,
            "train_loss_inference": train_loss,
            "most_predicted_class": 1,
            "most_predicted_share": 1.0 if accuracy < 0.2 else 0.12,
        }
        fits[name] = {"params": 1, "epochs": 3, "precision": "float32"}
    return summary.rows(models, metrics, fits)


# Twelve epochs. SLOW: validation loss lowest around epoch 4, then rising (with a little noise) while
# training loss falls: the overfitting sign. FAST: both keep falling.
NOISE = [0.002, -0.003, 0.001, 0.0, -0.002, 0.003, -0.001, 0.002, -0.002, 0.001, 0.0, -0.001]
SLOW_VAL_LOSS = [1.0, 0.5, 0.3, 0.2, 0.2, 0.21, 0.23, 0.25, 0.27, 0.29, 0.31, 0.33]
HISTORIES_SLOW = {
    name: {
        "val_accuracy": [0.5, 0.9, *([0.985] * 10)],
        "val_loss": [value + noise for value, noise in zip(SLOW_VAL_LOSS, NOISE, strict=True)],
        "loss": [1.2 / (epoch + 1) for epoch in range(12)],
    }
    for name in ("model1", "model2", "model3", "model4")
}
HISTORIES_FAST = {
    name: {
        "val_accuracy": [0.981, *([0.99] * 11)],
        "val_loss": [0.1 / (epoch + 1) + noise / 100 for epoch, noise in enumerate(NOISE)],
        "loss": [0.2 / (epoch + 1) for epoch in range(12)],
    }
    for name in ("model1", "model2", "model3", "model4")
}

# Like the notebook: Model 3 is stuck at chance, Model 4 is best.
NOTEBOOK_LIKE = {"model1": (0.9938, 0.0236, 0.0086), "model2": (0.9791, 0.0704, 0.1125), "model3": (0.1135, 2.3009, 2.3014), "model4": (0.9947, 0.0189, 0.0119)}
# A different run: Model 3 learns and wins, Model 2 fails.
DIFFERENT = {"model1": (0.990, 0.030, 0.025), "model2": (0.098, 2.302, 2.303), "model3": (0.9955, 0.015, 0.014), "model4": (0.991, 0.028, 0.027)}


def facts(results: dict, histories: dict, rules=RULES) -> list:
    return observations.observations(table_for(results), histories, rules, pair_test_for(results), seed=0)


def test_notebook_like_metrics_give_the_notebook_story() -> None:
    found = facts(NOTEBOOK_LIKE, HISTORIES_SLOW)
    signs = {item.model: item.sign for item in found if isinstance(item, OverfitSign)}
    assert set(signs) == {"model1", "model2", "model4"} and signs["model1"].fires and signs["model1"].validation.first_epoch == 4
    assert [item.model for item in found if isinstance(item, FailedToLearn)] == ["model3"]
    best = next(item for item in found if isinstance(item, Best))
    # 9 images apart: below the 0.1-point minimum effect, so no ranking.
    assert (best.best, best.runner_up, best.significant) == ("model4", "model1", False)
    assert (best.test.only_first, best.test.only_second) == (9, 0)
    speed = {item.model: item for item in found if isinstance(item, Convergence)}
    assert speed["model1"].reached == 3 and speed["model1"].best_epoch == 5 and speed["model1"].epochs == 12
    text = "\n".join(wording.observations_text(found, RULES))
    assert "**model1 shows the sign of overfitting on this run**: from epoch 4 +0.0" in text and ": fires, false alarms " in text
    assert "**model3 failed to learn**: test accuracy 11.35%" in text and "predicts class 1 for 100.00%" in text
    assert "**model4 and model1 are indistinguishable at this sample size**: test accuracy 99.47% and 99.38%, 0.09 points apart" in text
    assert "McNemar exact p = 0.00391: 9 test images only model4 gets right, 0 only model1" in text
    # Optimizers and initialisers are not ranked across different architectures: the claims table does that.
    assert "did best" not in text and "claims 4 and 6" in text
    assert "model1 reached 98.00% validation accuracy at epoch 3 and had its best validation loss at epoch 5 of 12" in text


def test_different_metrics_give_different_observations() -> None:
    found = facts(DIFFERENT, HISTORIES_FAST)
    assert not any(item.sign.fires for item in found if isinstance(item, OverfitSign))
    assert [item.model for item in found if isinstance(item, FailedToLearn)] == ["model2"]
    best = next(item for item in found if isinstance(item, Best))
    assert best.best == "model3" and best.significant
    text = "\n".join(wording.observations_text(found, RULES))
    assert "**model3 is the best model on this run**" in text and "**model1 does not show the sign of overfitting" in text


def test_rules_come_from_params() -> None:
    stricter = RULES.model_copy(update={"overfit_significance": 1e-12, "convergence_accuracy": 0.999, "min_accuracy_difference": 0.0005})
    found = facts(NOTEBOOK_LIKE, HISTORIES_SLOW, stricter)
    assert not next(item for item in found if isinstance(item, OverfitSign) and item.model == "model1").sign.fires
    assert all(math.isinf(item.reached) for item in found if isinstance(item, Convergence))
    # A 0.05-point minimum effect lets the 9-image gap (p = 0.0039) rank the two models.
    assert next(item for item in found if isinstance(item, Best)).significant
    text = "\n".join(wording.observations_text(found, stricter))
    assert "**model4 is the best model on this run**: test accuracy 99.47%, 0.09 points above model1 (99.38%)" in text


def test_epochs_to_a_threshold_is_computed_once_with_one_convention() -> None:
    assert epochs_to([0.1, 0.97, 0.99], 0.98) == 3
    assert math.isinf(epochs_to([0.1], 0.98))
