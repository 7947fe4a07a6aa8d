"""Train stage: build one declared model, fit it with the notebook's settings, save it.

Run: `python -m stages train model1 --data data/prepared --model models/model1.keras --log reports/training/model1`.
Every model in `params.yaml` is validated against Keras first, so a typo in any model fails
before any training starts. Each epoch is logged by DVCLive into `--log` and as one console line.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from stages.builder import build_model, count_trainable, validate_models
from stages.config import ModelSpec, ParamsError, TrainParams, load_params
from stages.errors import StageError
from stages.history import FIT_SUMMARY
from stages.io import atomic_path, read_npz, write_json

logger = logging.getLogger(__name__)


class TrainingDiverged(StageError, RuntimeError):
    """The loss became NaN or infinite."""


class EpochLog(keras.callbacks.Callback):
    """One console line per epoch (loss, accuracy, time) and the epoch times for the summary."""

    def __init__(self, name: str, epochs: int, train_images: int) -> None:
        super().__init__()
        self.name = name
        self.epochs = epochs
        self.train_images = train_images
        self.epoch_seconds: list[float] = []
        self.diverged_at: int | None = None
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._started
        self.epoch_seconds.append(seconds)
        logs = logs or {}
        logger.info(
            "%s epoch %d/%d: loss %.4f accuracy %.4f | val_loss %.4f val_accuracy %.4f | %.1f s, %.0f images/s",
            self.name,
            epoch + 1,
            self.epochs,
            logs.get("loss", math.nan),
            logs.get("accuracy", math.nan),
            logs.get("val_loss", math.nan),
            logs.get("val_accuracy", math.nan),
            seconds,
            self.train_images / seconds,
        )
        if not math.isfinite(logs.get("loss", 0.0)):
            self.diverged_at = epoch + 1
            self.model.stop_training = True


def fit(
    spec: ModelSpec,
    settings: TrainParams,
    train: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    log_dir: Path,
) -> tuple[keras.Model, dict[str, Any]]:
    """Fit one model as the notebook does: shuffled batches, validation on the test set each epoch."""
    keras.utils.set_random_seed(settings.seed)
    keras.mixed_precision.set_global_policy(spec.precision)
    model = build_model(spec)
    epoch_log = EpochLog(spec.name, settings.epochs, len(train["y"]))
    live = Live(str(log_dir), dvcyaml=False, save_dvc_exp=False, report=None)
    started = time.perf_counter()
    model.fit(
        train["x"],
        train["y"],
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_data=(test["x"], test["y"]),
        callbacks=[epoch_log, DVCLiveCallback(live=live)],
        verbose=0,
    )
    seconds = time.perf_counter() - started
    if epoch_log.diverged_at is not None:
        raise TrainingDiverged(
            f"{spec.name}: the training loss became NaN at epoch {epoch_log.diverged_at}; history so far is in {log_dir}. "
            f"Lower the learning rate in models.{spec.name}.optimizer."
        )
    summary = {
        "model": spec.name,
        "epochs": len(epoch_log.epoch_seconds),
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "precision": spec.precision,
        "params": int(model.count_params()),
        "trainable_params": count_trainable(model),
        "train_images": int(len(train["y"])),
        "train_seconds": round(seconds, 2),
        "epoch_seconds": [round(value, 2) for value in epoch_log.epoch_seconds],
    }
    return model, summary


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages train")
    parser.add_argument("model_name")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)

    params = load_params()
    if args.model_name not in params.models:
        raise ParamsError([(f"models.{args.model_name}", f"no such model; declared: {', '.join(params.models)}")])
    validate_models(dict(params.models))

    train = read_npz(args.data / "train.npz")
    test = read_npz(args.data / "test.npz")
    spec = params.models[args.model_name]
    logger.info(
        "%s: training on %d images for %d epochs (batch %d, %s)", spec.name, len(train["y"]), params.train.epochs, params.train.batch_size, spec.precision
    )
    model, summary = fit(spec, params.train, train, test, args.log)
    with atomic_path(args.model) as temporary:
        model.save(temporary)
    write_json(args.log / FIT_SUMMARY, summary)
    logger.info("%s: %d epochs in %.0f s -> %s", spec.name, summary["epochs"], summary["train_seconds"], args.model)
