"""Score a trained model: test and train loss/accuracy, per-class accuracy, confusion rows, predictions.

The training numbers come twice: the last epoch's training log, which is what the notebook's table
shows (averaged over the epoch, with dropout active), and a clean inference pass over the training
images with the final weights. Used by the evaluate stage and by the replica and ablation stages,
which keep no model and score it as soon as it is trained.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

NUM_CLASSES = 10


def confusion_rows(labels: np.ndarray, predictions: np.ndarray) -> list[dict[str, int]]:
    """One `{"actual", "predicted"}` row per image, the layout DVC's confusion template reads."""
    return [{"actual": int(actual), "predicted": int(predicted)} for actual, predicted in zip(labels, predictions, strict=True)]


def class_accuracy(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> dict[str, float | None]:
    """Accuracy per true class; None for a class with no images in the slice."""
    result: dict[str, float | None] = {}
    for digit in range(num_classes):
        mask = labels == digit
        result[str(digit)] = round(float(np.mean(predictions[mask] == digit)), 6) if mask.any() else None
    return result


def evaluate(
    model: keras.Model, train: dict[str, np.ndarray], test: dict[str, np.ndarray], history: dict[str, list[float]], batch_size: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Return the metrics and the predicted test classes."""
    test_loss, test_accuracy = model.evaluate(test["x"], test["y"], batch_size=batch_size, verbose=0)
    train_loss, train_accuracy = model.evaluate(train["x"], train["y"], batch_size=batch_size, verbose=0)
    predictions = np.argmax(model.predict(test["x"], batch_size=batch_size, verbose=0), axis=1)
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    counts = np.bincount(predictions, minlength=NUM_CLASSES)
    metrics = {
        "test_loss": round(float(test_loss), 6),
        "test_accuracy": round(float(test_accuracy), 6),
        "train_loss": round(history["loss"][-1], 6),
        "train_accuracy": round(history["accuracy"][-1], 6),
        "train_loss_inference": round(float(train_loss), 6),
        "train_accuracy_inference": round(float(train_accuracy), 6),
        "best_val_loss": round(history["val_loss"][best_epoch - 1], 6),
        "best_val_loss_epoch": best_epoch,
        "most_predicted_class": int(np.argmax(counts)),
        "most_predicted_share": round(float(counts.max() / len(predictions)), 6),
        "test_images": int(len(test["y"])),
    }
    return metrics, predictions
