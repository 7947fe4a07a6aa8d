"""Evaluate stage: score one trained model on the test and training images.

Run: `python -m stages evaluate model1 --data data/prepared --model models/model1.keras --log reports/training/model1 --out reports/eval/model1`.
Writes `metrics.json` (a DVC metric), `confusion.json` (rows for DVC's `confusion` template),
`class_accuracy.json`, `predictions.txt` (each test image's predicted class, for the report's
paired tests; see `stages/training/scoring.py`) and `landscape.json` (the training loss's gradient
and the loss along it on the first `LANDSCAPE_IMAGES` training images, whether the model stopped
in a minimum; see `stages/training/landscape.py`). It reads `train.batch_size` and nothing else of
the params, apart from the numerics the entry point applies.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stages.files import read_npz, write_json
from stages.params.base import load
from stages.params.training import TrainSection
from stages.training.history import read_history, write_predictions
from stages.training.landscape import loss_landscape
from stages.training.model_file import load_trained_model
from stages.training.scoring import class_accuracy, confusion_rows, evaluate

logger = logging.getLogger(__name__)

# A sixth of the training set: enough for the gradient's direction, a minute for Model 4 on 2 cores.
LANDSCAPE_IMAGES = 10_000


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages evaluate")
    parser.add_argument("model_name")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    batch_size = load(TrainSection).train.batch_size
    model = load_trained_model(args.model)
    train = read_npz(args.data / "train.npz")
    test = read_npz(args.data / "test.npz")
    metrics, predictions = evaluate(model, train, test, read_history(args.log), batch_size)
    write_json(args.out / "confusion.json", confusion_rows(test["y"], predictions))
    write_json(args.out / "class_accuracy.json", class_accuracy(test["y"], predictions))
    write_predictions(args.out / "predictions.txt", predictions)
    write_json(args.out / "landscape.json", loss_landscape(model, train["x"][:LANDSCAPE_IMAGES], train["y"][:LANDSCAPE_IMAGES], batch_size))
    write_json(args.out / "metrics.json", metrics)
    logger.info(
        "%s: test loss %.4f accuracy %.4f | train loss %.4f accuracy %.4f (last epoch)",
        args.model_name,
        metrics["test_loss"],
        metrics["test_accuracy"],
        metrics["train_loss"],
        metrics["train_accuracy"],
    )
