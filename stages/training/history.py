"""The small results a training run leaves, read without TensorFlow: the per-epoch history that
DVCLive's Keras callback writes, and the predicted test classes.

DVCLive writes `<dir>/plots/metrics/train/<metric>.tsv` for the training log and
`<dir>/plots/metrics/eval/<metric>.tsv` for the validation log, one row per epoch. The report
reads these (and `fit.json`) and never imports the training code that wrote them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from stages.files import write_text

HISTORY_METRICS = ("loss", "accuracy")
# Written by the train stage beside DVCLive's files: epochs run, parameter count, timings.
FIT_SUMMARY = "fit.json"


def metric_file(log_dir: Path | str, split: str, metric: str) -> Path:
    return Path(log_dir) / "plots" / "metrics" / split / f"{metric}.tsv"


def read_history(log_dir: Path | str) -> dict[str, list[float]]:
    """Return `{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...]}` by epoch."""
    history: dict[str, list[float]] = {}
    for split, prefix in (("train", ""), ("eval", "val_")):
        for metric in HISTORY_METRICS:
            path = metric_file(log_dir, split, metric)
            with open(path, encoding="utf-8", newline="") as handle:
                history[prefix + metric] = [float(row[metric]) for row in csv.DictReader(handle, delimiter="\t")]
    lengths = {len(values) for values in history.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"{log_dir}: training history is incomplete (epochs per metric: {sorted(lengths)})")
    return history


def write_predictions(path: Path | str, predicted: np.ndarray) -> None:
    """Predicted classes (0-9) of the test images, in order, as one line of digits (10 KB for 10,000)."""
    values = np.asarray(predicted)
    if values.size and (values.min() < 0 or values.max() > 9):
        raise ValueError(f"{path}: predicted classes must be digits 0-9")
    write_text(path, "".join(str(int(value)) for value in values) + "\n")


def read_predictions(path: Path | str) -> np.ndarray:
    text = Path(path).read_text(encoding="utf-8").strip()
    if not text.isdigit():
        raise ValueError(f"{path}: expected one line of digits 0-9")
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8) - ord("0")
