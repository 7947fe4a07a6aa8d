"""Train a model or an ablation at one seed and keep only small results: the replica and ablation stages.

The run differs from a main run only in its seed: `stages.training.fit.run` fits it (DVCLive history
and `fit.json` under `<out>/training`), `stages.training.scoring.evaluate` scores it, and `<out>` gets
`metrics.json` and `predictions.txt`. No model file is kept, so a run costs a few kilobytes of git
and nothing in the DVC cache, and a fresh clone's `dvc repro` skips it while its inputs are unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stages.files import write_json
from stages.training.fit import TrainingJob, run
from stages.training.history import FIT_SUMMARY, read_history, write_predictions
from stages.training.scoring import evaluate

logger = logging.getLogger(__name__)


def train_and_score(job: TrainingJob, out: Path) -> None:
    """Fit `job` (its log folder under `out`) and write its metrics and test predictions into `out`."""

    def save(model: keras.Model, summary: dict[str, Any], train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> None:
        write_json(job.log_dir / FIT_SUMMARY, summary)
        metrics, predictions = evaluate(model, train, test, read_history(job.log_dir), job.settings.batch_size)
        write_predictions(out / "predictions.txt", predictions)
        write_json(out / "metrics.json", {"seed": job.settings.seed, **metrics})
        logger.info("%s seed %d: test loss %.4f accuracy %.4f", job.spec.name, job.settings.seed, metrics["test_loss"], metrics["test_accuracy"])

    run(job, save)
