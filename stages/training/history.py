"""Read the per-epoch training history that DVCLive's Keras callback writes for one model.

DVCLive writes `<dir>/plots/metrics/train/<metric>.tsv` for the training log and
`<dir>/plots/metrics/eval/<metric>.tsv` for the validation log, one row per epoch.
"""

from __future__ import annotations

import csv
from pathlib import Path

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
