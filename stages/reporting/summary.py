"""The notebook's final comparison table, built from declarations and metrics (pure functions).

`rows` joins each model's declaration (conv layers, activation, optimizer) with its evaluation
metrics and training summary; `markdown_table` renders them; `metrics_by_model` is the
`reports/summary.json` DVC metric, keyed by model name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stages.params.training import ModelSpec
from stages.reporting.stats import Spread

SUMMARY_METRICS = (
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "train_loss",
    "train_accuracy_inference",
    "train_loss_inference",
    "params",
    "epochs",
)


def describe(spec: ModelSpec) -> dict[str, Any]:
    """The table columns a declaration gives: conv layers, their activation, optimizer, initialisers."""
    convolutions = [layer for layer in spec.layers if layer.class_name.startswith("Conv")]
    activations = sorted({str(layer.arguments.get("activation", "linear")) for layer in convolutions})
    initializers = sorted(
        {str(layer.arguments.get("kernel_initializer", "glorot_uniform")) for layer in spec.layers if layer.class_name in ("Conv2D", "Dense")}
    )
    return {
        "conv_layers": len(convolutions),
        "activation": ", ".join(activations) if activations else "-",
        "optimizer": spec.optimizer.class_name,
        "learning_rate": spec.optimizer.arguments.get("learning_rate"),
        "initializer": ", ".join(initializers),
    }


def rows(models: Mapping[str, ModelSpec], metrics: Mapping[str, Mapping[str, Any]], fits: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per model, in declaration order."""
    table = []
    for name, spec in models.items():
        fit = fits[name]
        row = {"model": name, **describe(spec), **metrics[name]}
        row.update(params=fit["params"], epochs=fit["epochs"], precision=fit["precision"])
        table.append(row)
    return table


def metrics_by_model(
    table: list[dict[str, Any]],
    accuracy: Mapping[str, Spread] | None = None,
    loss: Mapping[str, Spread] | None = None,
    at_chance: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The main run's metrics per model and, given the per-seed spreads (of the runs that trained), their
    mean and sd and, given the seeds whose run ended at chance, how many did (`runs_at_chance`).

    An ablation (no main run) has only the across-seed keys.
    """
    result: dict[str, dict[str, Any]] = {row["model"]: {key: row[key] for key in SUMMARY_METRICS} for row in table}
    for name, values in (accuracy or {}).items():
        entry = result.setdefault(name, {})
        entry["seeds"] = len(values.values)
        entry["test_accuracy_mean"] = round(values.mean, 6) if values.values else None
        entry["test_accuracy_sd"] = round(values.sd, 6) if len(values.values) > 1 else None
        if loss is not None:
            entry["test_loss_mean"] = round(loss[name].mean, 6) if values.values else None
            entry["test_loss_sd"] = round(loss[name].sd, 6) if len(values.values) > 1 else None
        if at_chance is not None:
            entry["runs_at_chance"] = len(at_chance[name])
    return result


def percent(value: float) -> str:
    """A fraction as a percentage with two decimals, the way the tables and the report show it."""
    return f"{100 * value:.2f}%"


def markdown_table(table: list[dict[str, Any]]) -> str:
    """The notebook's table (train columns from the last epoch's log) plus size, epochs and time."""
    header = [
        "Model",
        "Conv layers",
        "Activation",
        "Optimizer",
        "Train loss",
        "Test loss",
        "Train accuracy",
        "Test accuracy",
        "Params",
        "Epochs",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "--:", "---", "---", "--:", "--:", "--:", "--:", "--:", "--:"]) + "|"]
    for row in table:
        optimizer = f"{row['optimizer']} ({row['learning_rate']:g})" if row["learning_rate"] is not None else row["optimizer"]
        cells = [
            row["model"],
            str(row["conv_layers"]),
            row["activation"],
            optimizer,
            f"{row['train_loss']:.4f}",
            f"{row['test_loss']:.4f}",
            percent(row["train_accuracy"]),
            percent(row["test_accuracy"]),
            f"{row['params']:,}",
            str(row["epochs"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_markdown(table: list[dict[str, Any]], train_images: int, test_images: int) -> str:
    return (
        "# Model comparison\n\n"
        f"Trained on {train_images:,} images, tested on {test_images:,}. Train loss and accuracy are the last "
        "epoch's training log, as in the notebook's table; `reports/summary.json` also has a clean "
        "inference pass over the training images (`train_*_inference`).\n\n" + markdown_table(table)
    )
