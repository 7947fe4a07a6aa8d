"""The report's figures of what each run did, as pure functions returning `matplotlib.figure.Figure`s.

Every seed is its own thin line and the main run a bold one, so no line is a mean that no run followed;
a run that ended at chance (a failed run) is drawn dashed and named in the legend. Accuracy is in %,
epochs are whole numbers, and the validation curves say they are on the test set (as in the notebook).
The report stage draws these from the histories and predictions alone, so none needs a model file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from stages.reporting.claims import Run

VALIDATION_ACCURACY = "validation accuracy on the test set (%)"
VALIDATION_LOSS = "validation loss on the test set"
TRAINING_LOSS = "training loss (dropout on)"
# Whose runs share a colour: the same model keeps its colour in every figure.
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


def colours(names: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}


def _epoch_axis(axes: Axes) -> None:
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)


def _series(run: Run, key: str) -> np.ndarray:
    values = np.asarray(getattr(run, key), dtype=float)
    return 100.0 * values if key == "val_accuracy" else values


def draw_runs(axes: Axes, runs: Mapping[str, Sequence[Run]], key: str, failed: Mapping[str, Sequence[int]], palette: Mapping[str, str]) -> list[Line2D]:
    """Each model's runs on `axes`: the main run (the first) bold, the other seeds thin, failed runs dashed.
    Returns the legend's handles: per model its main run, its other seeds and its failed runs, by seed."""
    handles: list[Line2D] = []
    for name, model_runs in runs.items():
        colour, failures = palette[name], failed.get(name, ())
        for index, run in enumerate(model_runs):
            values = _series(run, key)
            epochs = np.arange(1, len(values) + 1)
            width = 2.4 if index == 0 else 0.9
            if run.seed in failures:
                axes.plot(epochs, values, color=colour, linestyle="--", linewidth=max(width, 1.4), marker="x", markersize=4, zorder=2)
            else:
                axes.plot(epochs, values, color=colour, linewidth=width, alpha=1.0 if index == 0 else 0.6, zorder=3 if index == 0 else 2)
        main = model_runs[0]
        if main.seed not in failures:
            handles.append(Line2D([], [], color=colour, linewidth=2.4, label=f"{name}, seed {main.seed} (bold)"))
        others = [run.seed for run in model_runs[1:] if run.seed not in failures]
        if others:
            handles.append(Line2D([], [], color=colour, linewidth=0.9, alpha=0.6, label=f"{name}, seed{'s' if len(others) > 1 else ''} {_listed(others)}"))
        if failures:
            label = f"{name}, seed{'s' if len(failures) > 1 else ''} {_listed(failures)}: at chance (failed)"
            handles.append(Line2D([], [], color=colour, linestyle="--", linewidth=1.4, marker="x", markersize=4, label=label))
    return handles


def _listed(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def run_curves(runs: Mapping[str, Sequence[Run]], key: str, failed: Mapping[str, Sequence[int]], palette: Mapping[str, str], title: str, ylabel: str) -> Figure:
    """One per-epoch history key (`val_accuracy`, `val_loss`, `loss`) of every run of the named models.
    Losses start their axis at 0, so a flat line stays flat."""
    figure = Figure(figsize=(7.2, 4.4), layout="constrained")
    axes = figure.subplots()
    handles = draw_runs(axes, runs, key, failed, palette)
    _epoch_axis(axes)
    if key != "val_accuracy":
        axes.set_ylim(bottom=0.0)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(handles=handles, fontsize=8)
    return figure


def final_accuracy_panel(axes: Axes, runs: Mapping[str, Sequence[Run]], failed: Mapping[str, Sequence[int]], palette: Mapping[str, str]) -> None:
    """Each run's final test accuracy as a dot per model (main run ringed), zoomed to the runs that trained:
    the scale on which a gap of a tenth of a point shows. Failed runs are left out and said so."""
    trained = {name: [run for run in model_runs if run.seed not in failed.get(name, ())] for name, model_runs in runs.items()}
    shown = {name: model_runs for name, model_runs in trained.items() if model_runs}
    for position, (name, model_runs) in enumerate(shown.items()):
        values = [100.0 * run.test_accuracy for run in model_runs]
        offsets = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
        axes.scatter(position + offsets, values, color=palette[name], s=22, zorder=3)
        if model_runs[0] is runs[name][0]:
            axes.scatter([position + offsets[0]], [values[0]], facecolors="none", edgecolors="black", s=70, zorder=4)
    axes.set_xticks(range(len(shown)), [f"{name}\n({len(shown[name])} runs)" for name in shown], fontsize=8)
    axes.set_xlim(-0.6, len(shown) - 0.4)
    axes.set_ylabel("test accuracy at the end (%)")
    axes.grid(axis="y", alpha=0.3)
    left_out = [f"{name} seed {seed}" for name, seeds in failed.items() if name in runs for seed in seeds]
    title = "each run's final accuracy (ring: main run)"
    axes.set_title(title + (f"\nnot shown, at chance: {', '.join(left_out)}" if left_out else ""), fontsize=9)


def claim_figure(
    runs: Mapping[str, Sequence[Run]],
    key: str,
    failed: Mapping[str, Sequence[int]],
    palette: Mapping[str, str],
    title: str,
    ylabel: str,
    zoom: Sequence[str] = (),
) -> Figure:
    """A claim's per-epoch curves, every run; with `zoom` (the models whose gap the verdict turns on), beside
    them those models' runs' final test accuracy on a scale that shows that gap."""
    if not zoom:
        return run_curves(runs, key, failed, palette, title, ylabel)
    figure = Figure(figsize=(10.5, 4.4), layout="constrained")
    curves_axes, final_axes = figure.subplots(1, 2, width_ratios=(1.6, 1))
    handles = draw_runs(curves_axes, runs, key, failed, palette)
    _epoch_axis(curves_axes)
    curves_axes.set_ylabel(ylabel)
    curves_axes.legend(handles=handles, fontsize=7)
    final_accuracy_panel(final_axes, {name: runs[name] for name in zoom}, failed, palette)
    figure.suptitle(title)
    return figure


def overview(runs: Mapping[str, Sequence[Run]], failed: Mapping[str, Sequence[int]], palette: Mapping[str, str], top: float = 97.0) -> Figure:
    """The models' validation accuracy per epoch, every seed: the whole scale, and beside it the top of it
    (from `top` %) where the models that learn part. 8 x 3.6 inches at 100 dpi: 800 pixels wide."""
    figure = Figure(figsize=(8.0, 3.6), layout="constrained")
    whole, close = figure.subplots(1, 2)
    handles = draw_runs(whole, runs, "val_accuracy", failed, palette)
    draw_runs(close, runs, "val_accuracy", failed, palette)
    for axes in (whole, close):
        _epoch_axis(axes)
    whole.set_ylim(0, 100)
    whole.set_ylabel(VALIDATION_ACCURACY, fontsize=9)
    whole.set_title("every run, 0-100%", fontsize=10)
    close.set_ylim(top, 100)
    close.set_title(f"the top, {top:g}-100%", fontsize=10)
    figure.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=7, frameon=False)
    return figure


def model_curves(history: Mapping[str, Sequence[float]], runs: Sequence[Run], name: str, colour: str) -> Figure:
    """One model's main run, train and validation loss and accuracy per epoch, with the other seeds'
    validation curves thin behind it. Loss from 0; accuracy in %."""
    figure = Figure(figsize=(9.0, 3.6), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for run in runs[1:]:
        loss_axes.plot(np.arange(1, len(run.val_loss) + 1), run.val_loss, color=colour, linewidth=0.8, alpha=0.35)
        accuracy_axes.plot(np.arange(1, len(run.val_accuracy) + 1), _series(run, "val_accuracy"), color=colour, linewidth=0.8, alpha=0.35)
    loss_axes.plot(epochs, history["val_loss"], color=colour, linewidth=2.2, label="validation (test set)")
    loss_axes.plot(epochs, history["loss"], color="black", linewidth=1.4, linestyle=":", label="training")
    accuracy_axes.plot(epochs, 100.0 * np.asarray(history["val_accuracy"]), color=colour, linewidth=2.2, label="validation (test set)")
    accuracy_axes.plot(epochs, 100.0 * np.asarray(history["accuracy"]), color="black", linewidth=1.4, linestyle=":", label="training")
    for axes in (loss_axes, accuracy_axes):
        _epoch_axis(axes)
    highest = max(max(history["loss"]), max(history["val_loss"]), *(max(run.val_loss) for run in runs[1:] if run.val_loss))
    loss_axes.set_ylim(0.0, 1.1 * highest)  # from 0, with room above: a flat line stays flat and in view
    loss_axes.set_ylabel("loss")
    accuracy_axes.set_ylabel("accuracy (%)")
    accuracy_axes.set_ylim(0.0, 101.0)
    seeds = ", ".join(str(run.seed) for run in runs[1:])
    loss_axes.set_title("loss", fontsize=10)
    accuracy_axes.set_title("accuracy", fontsize=10)
    accuracy_axes.legend(fontsize=8, loc="center right", title=f"bold: seed {runs[0].seed}; thin: seeds {seeds}" if seeds else None, title_fontsize=8)
    figure.suptitle(f"{name}: what its runs did, epoch by epoch")
    return figure


def confusion_errors(labels: np.ndarray, predictions: np.ndarray, title: str, num_classes: int = 10) -> Figure:
    """The confusion matrix with the diagonal apart: correct counts in grey text, errors coloured on a log
    scale of their own, so a handful of 4->9 confusions shows beside 1,000 correct 4s."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    errors = counts.astype(float)
    np.fill_diagonal(errors, np.nan)
    errors[errors == 0] = np.nan
    figure = Figure(figsize=(5.8, 4.8), layout="constrained")
    axes = figure.subplots()
    largest = np.nanmax(errors) if np.isfinite(errors).any() else 1.0
    # vmin below 1, so that a single wrong prediction is tinted, not white.
    image = axes.imshow(np.ma.masked_invalid(errors), cmap="Reds", norm=LogNorm(vmin=0.5, vmax=max(largest, 2.0)))
    for actual in range(num_classes):
        for predicted in range(num_classes):
            count = counts[actual, predicted]
            if actual == predicted:
                axes.add_patch(Rectangle((predicted - 0.5, actual - 0.5), 1, 1, color="0.92", zorder=0))
                axes.text(predicted, actual, f"{count}", ha="center", va="center", fontsize=6.5, color="dimgray")
            elif count:
                axes.text(predicted, actual, f"{count}", ha="center", va="center", fontsize=7, color="black")
    axes.set_xticks(range(num_classes))
    axes.set_yticks(range(num_classes))
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title, fontsize=10)
    ticks = [tick for tick in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if tick <= max(largest, 2.0)]
    bar = figure.colorbar(image, ax=axes, label="wrong predictions (log scale); diagonal: right, in grey")
    bar.set_ticks(ticks, labels=[str(tick) for tick in ticks])
    bar.minorticks_off()
    return figure
