"""Evaluate stage: test and train loss/accuracy, per-class accuracy and confusion data for one model.

Run: `python -m stages evaluate model1 --data data/prepared --model models/model1.keras --log reports/training/model1 --out reports/eval/model1`.
Writes `metrics.json` (a DVC metric), `confusion.json` (rows for DVC's `confusion` template),
`class_accuracy.json` and `predictions.txt` (each test image's predicted class, for the report's
paired tests). The training numbers come twice: the last epoch's training log, which is
what the notebook's table shows (averaged over the epoch, with dropout active), and a clean
inference pass over the training images with the final weights.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stages.config import load_params
from stages.history import read_history
from stages.io import read_npz, write_json, write_predictions
from stages.models import load_trained_model

logger = logging.getLogger(__name__)

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


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages evaluate")
    parser.add_argument("model_name")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    batch_size = load_params().train.batch_size
    model = load_trained_model(args.model)
    train = read_npz(args.data / "train.npz")
    test = read_npz(args.data / "test.npz")
    metrics, predictions = evaluate(model, train, test, read_history(args.log), batch_size)
    write_json(args.out / "confusion.json", confusion_rows(test["y"], predictions))
    write_json(args.out / "class_accuracy.json", class_accuracy(test["y"], predictions))
    write_predictions(args.out / "predictions.txt", predictions)
    write_json(args.out / "metrics.json", metrics)
    logger.info(
        "%s: test loss %.4f accuracy %.4f | train loss %.4f accuracy %.4f (last epoch)",
        args.model_name,
        metrics["test_loss"],
        metrics["test_accuracy"],
        metrics["train_loss"],
        metrics["train_accuracy"],
    )
