"""Confusion data and per-class accuracy."""

from __future__ import annotations

import numpy as np

from stages.evaluate import class_accuracy, confusion_rows


def test_confusion_rows_follow_dvc_confusion_template() -> None:
    rows = confusion_rows(np.array([3, 1]), np.array([3, 7]))
    assert rows == [{"actual": 3, "predicted": 3}, {"actual": 1, "predicted": 7}]


def test_class_accuracy_with_an_absent_class() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    predictions = np.array([0, 1, 1, 1, 0])
    result = class_accuracy(labels, predictions, num_classes=3)
    assert result == {"0": 0.5, "1": 0.666667, "2": None}
