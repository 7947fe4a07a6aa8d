"""The report's text as pure functions: observations generated from metrics, and the Markdown.

Nothing here is hard-coded to the notebook's results: every sentence is computed from the run's
metrics and histories under the rules in `params.yaml: report`, so a different run tells a
different story.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stages.params.report import ReportParams
from stages.params.training import ModelSpec
from stages.reporting.claims import epochs_to
from stages.reporting.stats import McNemar
from stages.reporting.summary import percent

# McNemar's exact test between two models of this run, by name (see `stages.reporting.stats`).
PairTest = Callable[[str, str], McNemar]


def failed_to_learn(row: Mapping[str, Any], rules: ReportParams) -> bool:
    return row["test_accuracy"] <= rules.chance_accuracy


def ranking(first: Mapping[str, Any], second: Mapping[str, Any], pair_test: PairTest, rules: ReportParams) -> tuple[bool, str]:
    """Whether `first` (the more accurate on this run) is significantly better than `second`, and why.

    Significant means McNemar's exact p below `report.significance_level` and a gap of at least
    `report.min_accuracy_difference`; otherwise the two are indistinguishable at this sample size.
    """
    test = pair_test(first["model"], second["model"])
    gap = first["test_accuracy"] - second["test_accuracy"]
    significant = test.p_value < rules.significance_level and gap >= rules.min_accuracy_difference
    reason = f"McNemar exact p = {test.p_value:.3g}: {test.only_first} test images only {first['model']} gets right, {test.only_second} only {second['model']}"
    return significant, reason


def observations(
    table: Sequence[Mapping[str, Any]], histories: Mapping[str, Mapping[str, Sequence[float]]], rules: ReportParams, pair_test: PairTest
) -> list[str]:
    """Sentences about overfitting, failure to learn, the best model, convergence and optimizers.

    A model is called better than another only when `ranking` finds the difference significant.
    """
    notes = []
    for row in table:
        name = row["model"]
        if failed_to_learn(row, rules):
            notes.append(
                f"**{name} failed to learn**: test accuracy {percent(row['test_accuracy'])} is at most {percent(rules.chance_accuracy)} "
                f"(chance is 10%); it predicts class {row['most_predicted_class']} for {percent(row['most_predicted_share'])} of the test images."
            )
            continue
        history = histories[name]
        losses = history["val_loss"]
        best_epoch = min(range(len(losses)), key=losses.__getitem__)
        rise = losses[-1] / losses[best_epoch] - 1.0
        still_falls = best_epoch < len(losses) - 1 and history["loss"][-1] < history["loss"][best_epoch]
        sign = rise >= rules.overfit_val_loss_rise and still_falls
        notes.append(
            f"**{name} {'shows' if sign else 'does not show'} the sign of overfitting on this run**: its last-epoch validation loss "
            f"{losses[-1]:.4f} is {100 * rise:.0f}% above its minimum {losses[best_epoch]:.4f} (epoch {best_epoch + 1}), "
            f"the rule is {100 * rules.overfit_val_loss_rise:g}%, and its training loss {'still falls' if still_falls else 'does not fall further'} "
            "(across seeds, the claims table decides)."
        )

    ranked = sorted(table, key=lambda row: row["test_accuracy"], reverse=True)
    best = ranked[0]
    if len(ranked) > 1:
        runner_up = ranked[1]
        gap = best["test_accuracy"] - runner_up["test_accuracy"]
        significant, reason = ranking(best, runner_up, pair_test, rules)
        if significant:
            notes.append(
                f"**{best['model']} is the best model on this run**: test accuracy {percent(best['test_accuracy'])}, "
                f"{100 * gap:.2f} points above {runner_up['model']} ({percent(runner_up['test_accuracy'])}); {reason}."
            )
        else:
            notes.append(
                f"**{best['model']} and {runner_up['model']} are indistinguishable at this sample size**: test accuracy "
                f"{percent(best['test_accuracy'])} and {percent(runner_up['test_accuracy'])}, {100 * gap:.2f} points apart; {reason}."
            )
    else:
        notes.append(f"**{best['model']}** is the only model: test accuracy {percent(best['test_accuracy'])}.")

    threshold = rules.convergence_accuracy
    speeds = []
    for row in table:
        history = histories[row["model"]]
        reached = epochs_to(history["val_accuracy"], threshold)
        best_epoch = min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__) + 1
        reached_text = (
            f"reached {percent(threshold)} validation accuracy at epoch {int(reached)}"
            if not math.isinf(reached)
            else f"never reached {percent(threshold)} validation accuracy"
        )
        speeds.append(f"{row['model']} {reached_text} and had its best validation loss at epoch {best_epoch} of {len(history['val_loss'])}")
    notes.append("Convergence (descriptive; an integer measure decides nothing here): " + "; ".join(speeds) + ".")
    notes.append(
        "Initialisers and optimizers differ between these models together with their layers, so this run does not rank them; "
        "the claims table compares each with a one-change ablation (claims 4 and 6)."
    )
    return notes


def declaration_in_words(spec: ModelSpec, description: Mapping[str, Any], fit: Mapping[str, Any]) -> str:
    rate = description["learning_rate"]
    optimizer = f"{description['optimizer']} (learning rate {rate:g})" if rate is not None else description["optimizer"]
    epochs = f"{fit['epochs']} epoch{'s' if fit['epochs'] != 1 else ''}"
    return (
        f"{description['conv_layers']} convolution layers with {description['activation']} activation, {len(spec.layers)} layers in all; "
        f"{optimizer}; kernel initialisers {description['initializer']}; loss {spec.loss}; precision {spec.precision}. "
        f"Trained for {epochs} with batch size {fit['batch_size']} on {fit['train_images']:,} images (its time and machine: `reports/runs/`)."
    )


def layer_table(layers: Sequence[Mapping[str, Any]], totals: Mapping[str, int]) -> str:
    """Markdown version of Keras' `model.summary()`: layer (type), output shape, parameters, totals."""
    lines = ["| Layer (type) | Output shape | Param # |", "|---|---|--:|"]
    lines += [f"| {layer['name']} ({layer['type']}) | {layer['output_shape']} | {layer['params']:,} |" for layer in layers]
    lines.append("")
    lines.append(f"Total params: {totals['total']:,} · Trainable params: {totals['trainable']:,} · Non-trainable params: {totals['non_trainable']:,}")
    return "\n".join(lines)


def class_count_table(train_counts: Sequence[int], test_counts: Sequence[int]) -> str:
    lines = ["| Digit | " + " | ".join(str(digit) for digit in range(len(train_counts))) + " |", "|---|" + "--:|" * len(train_counts)]
    lines.append("| Train | " + " | ".join(f"{count:,}" for count in train_counts) + " |")
    lines.append("| Test | " + " | ".join(f"{count:,}" for count in test_counts) + " |")
    return "\n".join(lines)
