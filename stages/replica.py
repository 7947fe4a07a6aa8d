"""Replica stage: train a model or an ablation at one seed and keep only small results.

Run: `python -m stages replica model1 --seed 1 --data data/prepared --out reports/replicas/model1/seed-1
--backup checkpoints/replicas/model1/seed-1`. The run differs from the main run only in the seed:
the same `stages.train.run` fits it (DVCLive history and `fit.json` under `<out>/training`), and the
same `stages.evaluate.evaluate` scores it, writing `<out>/metrics.json` and `<out>/predictions.txt`.
No model file is kept, so a replica costs a few kilobytes of git and nothing in the DVC cache, and
a fresh clone's `dvc repro` skips it while its inputs are unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stages.builder import model_problems
from stages.config import load_params
from stages.evaluate import evaluate
from stages.history import FIT_SUMMARY, read_history
from stages.io import write_json, write_predictions
from stages.train import run

logger = logging.getLogger(__name__)

TRAINING_DIR = "training"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages replica")
    parser.add_argument("model_name", help="a key of `models` or of `ablations.models` in params.yaml")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backup", type=Path, help="directory for the per-epoch backup that lets a killed run resume")
    args = parser.parse_args(argv)

    params = load_params(model_check=model_problems)
    spec = params.spec(args.model_name)
    settings = dataclasses.replace(params.train, seed=args.seed)
    log_dir = args.out / TRAINING_DIR

    def save(model: keras.Model, summary: dict[str, Any], train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> None:
        write_json(log_dir / FIT_SUMMARY, summary)
        metrics, predictions = evaluate(model, train, test, read_history(log_dir), settings.batch_size)
        write_predictions(args.out / "predictions.txt", predictions)
        write_json(args.out / "metrics.json", {"seed": args.seed, **metrics})
        logger.info("%s seed %d: test loss %.4f accuracy %.4f", spec.name, args.seed, metrics["test_loss"], metrics["test_accuracy"])

    run(spec, settings, args.data, log_dir, args.backup, "replica", save)
