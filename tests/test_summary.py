"""The comparison table and the summary metric."""

from __future__ import annotations

from pathlib import Path

from stages.params.training import load_training
from stages.reporting import summary

REPO = Path(__file__).resolve().parents[1]


def fake_results(models) -> tuple[dict, dict]:
    metrics, fits = {}, {}
    for index, name in enumerate(models, start=1):
        metrics[name] = {
            "test_loss": 0.02 * index,
            "test_accuracy": 0.99 - 0.01 * index,
            "train_loss": 0.01 * index,
            "train_accuracy": 0.995,
            "train_loss_inference": 0.005,
            "train_accuracy_inference": 0.998,
        }
        fits[name] = {"params": 1000 * index, "epochs": 20, "precision": "float32"}
    return metrics, fits


def test_table_has_the_notebook_columns_per_model() -> None:
    training = load_training(REPO / "params.yaml")
    models = {name: training.spec(name) for name in training.models}
    table = summary.rows(models, *fake_results(models))
    text = summary.markdown_table(table)
    lines = text.strip().splitlines()
    assert lines[0].startswith("| Model | Conv layers | Activation | Optimizer | Train loss | Test loss | Train accuracy | Test accuracy |")
    assert lines[2] == "| model1 | 4 | relu | Adam (0.001) | 0.0100 | 0.0200 | 99.50% | 98.00% | 1,000 | 20 |"
    assert lines[3].startswith("| model2 | 2 | sigmoid | Adadelta (1) |")
    assert lines[5].startswith("| model4 | 6 | relu | Adam (0.001) |")


def test_summary_metric_is_keyed_by_model() -> None:
    training = load_training(REPO / "params.yaml")
    models = {name: training.spec(name) for name in training.models}
    result = summary.metrics_by_model(summary.rows(models, *fake_results(models)))
    assert list(result) == ["model1", "model2", "model3", "model4"]
    assert set(result["model3"]) == set(summary.SUMMARY_METRICS)
    assert result["model3"]["params"] == 3000


def test_describe_reads_the_declaration() -> None:
    training = load_training(REPO / "params.yaml")
    models = {name: training.spec(name) for name in training.models}
    assert summary.describe(models["model4"])["initializer"] == "glorot_uniform, he_normal"
    assert summary.describe(models["model3"])["optimizer"] == "SGD"
