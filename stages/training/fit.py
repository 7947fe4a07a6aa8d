"""Fit one declared model with the notebook's settings: what the train, replica and ablation stages run.

Each epoch is logged by DVCLive into the stage's log folder and as one console line, and backed up
(see `stages/training/backup.py`): a run that is killed resumes after its last finished epoch and
ends where an uninterrupted run would. What a run produced (`fit.json`) is kept apart from how it
ran (the run record: timings and environment), so two runs with the same result write the same
bytes everywhere but in their run records.

Batches come from a `tf.data` pipeline over the arrays converted once, shuffled per epoch by a
stateless shuffle keyed by (seed, epoch), so epoch k's order does not depend on the epochs run
before it in the same process; that is what lets a resumed run match an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from stages.errors import StageError
from stages.files import read_npz, write_json
from stages.params.numerics import Numerics
from stages.params.training import ModelSpec, TrainSettings
from stages.training.backup import Backup, Restored, UnusableBackup, declared_deps, run_key
from stages.training.builder import build_model, count_trainable, layer_table, precision_scope
from stages.training.environment import bf16_warning, environment, read_cpu

logger = logging.getLogger(__name__)


class TrainingDiverged(StageError, RuntimeError):
    """The loss became NaN or infinite."""


class EpochLog(keras.callbacks.Callback):
    """Per finished epoch: one console line (loss, accuracy, time), the epoch's logs and time, and the
    backup when given. One callback holds the history, so nothing depends on the order of callbacks."""

    def __init__(self, name: str, epochs: int, train_images: int, backup: Backup | None = None, restored: Restored | None = None) -> None:
        super().__init__()
        self.name = name
        self.epochs = epochs
        self.train_images = train_images
        self.backup = backup
        self.history: list[dict[str, float]] = list(restored.history) if restored else []
        self.epoch_seconds: list[float] = list(restored.epoch_seconds) if restored else []
        self.diverged_at: int | None = None
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._started
        self.epoch_seconds.append(seconds)
        logs = {name: float(value) for name, value in (logs or {}).items()}
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
        # keras.callbacks.TerminateOnNaN stops the run at the first bad batch; this names the epoch.
        if not math.isfinite(logs.get("loss", 0.0)):
            self.diverged_at = epoch + 1
            return
        self.history.append(logs)
        if self.backup is not None:
            self.backup.save(self.model, epoch + 1, self.history, self.epoch_seconds)


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    """One training stage's run: what it fits, under which numerics, from which data, and where its files go."""

    spec: ModelSpec
    settings: TrainSettings
    numerics: Numerics
    stage: str  # its dvc.yaml stage template, whose deps key the backup
    data: Path
    log_dir: Path
    record: Path
    backup_dir: Path | None = None


def steps_per_epoch(images: int, batch_size: int) -> int:
    return math.ceil(images / batch_size)


def training_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, first_epoch: int, epochs: int) -> tf.data.Dataset:
    """Batches for epochs `first_epoch`..`epochs - 1`, each epoch in its own order fixed by (seed, epoch)."""
    # tf.data runs on the CPU; keep its source arrays there even when a GPU is the default device.
    with tf.device("/CPU:0"):
        images = tf.constant(x)
        labels = tf.constant(y)
    count = len(y)

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    batches = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_order)
    batches = batches.map(lambda index: (tf.gather(images, index), tf.gather(labels, index)), num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)


def evaluation_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


def prepare_model(spec: ModelSpec, seed: int) -> keras.Model:
    """The compiled model in its declared precision, its weights drawn from `seed`."""
    keras.utils.set_random_seed(seed)
    return build_model(spec)


def fit(
    job: TrainingJob, train: dict[str, np.ndarray], test: dict[str, np.ndarray], backup: Backup | None = None
) -> tuple[keras.Model, dict[str, Any], dict[str, Any]]:
    """Fit one model as the notebook does: shuffled batches, validation on the test set each epoch,
    with Keras' global dtype policy set to the model's precision (restored afterwards).
    Returns the model, what the run produced (epochs, parameter counts) and how long it took.
    """
    spec, settings = job.spec, job.settings
    with precision_scope(spec.precision):
        model = prepare_model(spec, settings.seed)
        try:
            restored = backup.restore(model) if backup is not None else None
        except UnusableBackup as problem:
            logger.warning("%s; deleted, starting from epoch 1", problem)
            backup.delete()
            # The failed load may have changed some weights: start again from the seeded model.
            model = prepare_model(spec, settings.seed)
            restored = None
        first_epoch = restored.epochs_done if restored else 0
        epoch_log = EpochLog(spec.name, settings.epochs, len(train["y"]), backup, restored)
        dvclive_callback = DVCLiveCallback(live=Live(str(job.log_dir), dvcyaml=False, save_dvc_exp=False, report=None))
        for epoch, logs in enumerate(epoch_log.history):
            dvclive_callback.on_epoch_end(epoch, logs)
        if restored:
            logger.info("%s: resuming after epoch %d of %d from %s", spec.name, first_epoch, settings.epochs, backup.directory)
        started = time.perf_counter()
        model.fit(
            training_batches(train["x"], train["y"], settings.batch_size, settings.seed, first_epoch, settings.epochs),
            steps_per_epoch=steps_per_epoch(len(train["y"]), settings.batch_size),
            epochs=settings.epochs,
            initial_epoch=first_epoch,
            shuffle=False,  # the batches are shuffled per epoch by training_batches
            validation_data=evaluation_batches(test["x"], test["y"], settings.batch_size),
            callbacks=[keras.callbacks.TerminateOnNaN(), epoch_log, dvclive_callback],
            verbose=0,
        )
        seconds = time.perf_counter() - started
    if epoch_log.diverged_at is not None:
        raise TrainingDiverged(
            f"{spec.name}: the training loss became NaN at epoch {epoch_log.diverged_at}; history so far is in {job.log_dir}. "
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
        "layers": layer_table(model),
    }
    timing = {
        "resumed_after_epoch": first_epoch,
        "train_seconds": round(seconds + sum(restored.epoch_seconds if restored else []), 2),
        "epoch_seconds": [round(value, 2) for value in epoch_log.epoch_seconds],
    }
    return model, summary, timing


Save = Callable[[keras.Model, dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]], None]


def run(job: TrainingJob, save: Save) -> None:
    """Read the prepared data, fit the job's model and hand the model, its fit summary and the train
    and test arrays to `save`; then write the run record (timings, numerics, environment) and delete
    the backup, which is keyed by the deps `dvc.yaml` declares for the job's stage.
    """
    spec, settings = job.spec, job.settings
    train = read_npz(job.data / "train.npz")
    test = read_npz(job.data / "test.npz")
    logger.info(
        "%s: training on %d images for %d epochs (batch %d, seed %d, %s; %s)",
        spec.name,
        len(train["y"]),
        settings.epochs,
        settings.batch_size,
        settings.seed,
        spec.precision,
        job.numerics.describe(),
    )
    cpu = read_cpu()
    warning = bf16_warning(spec.precision, job.numerics, cpu)
    if warning:
        logger.warning("%s: %s", spec.name, warning)
    backup = None
    if job.backup_dir is not None:
        backup = Backup(job.backup_dir, run_key(spec, settings, job.numerics, declared_deps(job.stage)))
    model, summary, timing = fit(job, train, test, backup)
    save(model, summary, train, test)
    write_json(job.record, {"stage": job.stage, "model": spec.name, "seed": settings.seed, **timing, "environment": environment(job.numerics, cpu)})
    if backup is not None:
        backup.delete()
