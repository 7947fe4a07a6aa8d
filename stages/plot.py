"""Plot stage: loss and accuracy curves per epoch and violins of every trained kernel, as PNG.

Run: `python -m stages plot model1 --model models/model1.keras --log reports/training/model1 --out reports/figures/model1`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import keras

from stages.reporting import figures
from stages.reporting.figures import save_figure
from stages.training.history import read_history
from stages.training.model_file import load_trained_model

logger = logging.getLogger(__name__)


def kernels(model: keras.Model) -> list[tuple[str, object]]:
    """(layer name, kernel) for every Conv2D and Dense layer, in order."""
    return [(layer.name, layer.kernel.numpy()) for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages plot")
    parser.add_argument("model_name")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    name = args.model_name
    history = read_history(args.log)
    model = load_trained_model(args.model)
    save_figure(figures.curves(history, "loss", f"{name}: train and validation loss", "categorical cross-entropy loss"), args.out / "loss.png")
    save_figure(figures.curves(history, "accuracy", f"{name}: train and validation accuracy", "accuracy"), args.out / "accuracy.png")
    save_figure(figures.weight_violins(kernels(model), f"{name}: trained weights per layer"), args.out / "weights.png")
    logger.info("%s: figures -> %s", name, args.out)
