"""Figures as pure functions: each returns a `matplotlib.figure.Figure`; stage mains save them with `save_figure`.

Figures are made without pyplot, so nothing depends on a display or a global backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from stages.files import atomic_path

# Kernels larger than this are drawn from a fixed random sample: a violin of 3.2 million weights
# looks the same as one of 50,000 and takes far longer to estimate.
VIOLIN_SAMPLE = 50_000


def save_figure(figure: Figure, path: Path) -> None:
    """Write `figure` as a PNG at 100 dpi, atomically."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")


def _epochs(values: list[float]) -> list[int]:
    return list(range(1, len(values) + 1))


def curves(history: dict[str, list[float]], metric: str, title: str, ylabel: str) -> Figure:
    """Train and validation `metric` per epoch, in the notebook's colours (validation blue, train red)."""
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    axes.plot(_epochs(history[f"val_{metric}"]), history[f"val_{metric}"], "b", marker=".", label=f"Validation {metric}")
    axes.plot(_epochs(history[metric]), history[metric], "r", marker=".", label=f"Train {metric}")
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True)
    axes.legend()
    return figure


def weight_violins(kernels: list[tuple[str, np.ndarray]], title: str, seed: int = 0) -> Figure:
    """One violin per Conv2D/Dense kernel, labelled by the layer's own name and kernel shape."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, kernel in kernels:
        values = np.asarray(kernel, dtype=np.float32).ravel()
        if values.size > VIOLIN_SAMPLE:
            values = rng.choice(values, VIOLIN_SAMPLE, replace=False)
        label = f"{name}\n{'x'.join(str(size) for size in kernel.shape)}"
        frames.append(pd.DataFrame({"layer": label, "weight": values}))
    data = pd.concat(frames, ignore_index=True)
    figure = Figure(figsize=(max(6.4, 1.3 * len(kernels)), 4.8), layout="constrained")
    axes = figure.subplots()
    sns.violinplot(data=data, x="layer", y="weight", hue="layer", palette="tab10", legend=False, cut=0, ax=axes)
    axes.set_xlabel("layer (kernel shape)")
    axes.set_ylabel("trained weight")
    axes.set_title(title)
    axes.tick_params(axis="x", labelsize=8)
    return figure


def digit_grid(images: np.ndarray, captions: list[str], title: str, columns: int = 10) -> Figure:
    """Images (N, 28, 28[, 1]) in a grid, each with a caption underneath."""
    count = len(images)
    rows = max(1, -(-count // columns))
    figure = Figure(figsize=(columns * 0.9, rows * 1.05 + 0.4), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        axes.set_axis_off()
        if index < count:
            axes.imshow(np.asarray(images[index]).reshape(28, 28), cmap="gray_r", vmin=0.0, vmax=1.0)
            axes.set_title(captions[index], fontsize=8)
    figure.suptitle(title)
    return figure


def confusion_heatmap(labels: np.ndarray, predictions: np.ndarray, title: str, num_classes: int = 10) -> Figure:
    """Counts of true class (rows) against predicted class (columns)."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    figure = Figure(figsize=(5.6, 4.8), layout="constrained")
    axes = figure.subplots()
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, annot_kws={"fontsize": 7}, ax=axes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title)
    return figure


def seed_bands(series: dict[str, list[tuple[float, ...]]], title: str, ylabel: str, scale: float = 1.0) -> Figure:
    """Per model, the mean over seeds of a per-epoch curve as a line and its range (min to max) as a band."""
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    for name, runs in series.items():
        values = scale * np.asarray(runs, dtype=float)
        epochs = _epochs(list(values[0]))
        line = axes.plot(epochs, values.mean(axis=0), marker=".", label=f"{name} (mean of {len(values)} seeds)")[0]
        axes.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    axes.grid(alpha=0.3)
    return figure
