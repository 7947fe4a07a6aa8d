"""Train stage: fit one declared model with the notebook's settings and save it.

Run: `python -m stages train model1 --data data/prepared --model models/model1.keras --log reports/training/model1
--record reports/runs/train/model1.json --backup checkpoints/model1`. It reads the params it declares
in `dvc.yaml` (`train`, `numerics`, `models.<model>`) and checks that model against Keras before
training. The fit itself is `stages/training/fit.py`; `--log` gets the per-epoch history and
`fit.json` (epochs, parameter counts, the layer table), the model file's bytes depend only on the
model (`stages/training/model_file.py`), and `--record` gets the run's timings and environment.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stages.files import write_json
from stages.params.training import load_model_run, train_settings
from stages.training.builder import model_problems
from stages.training.fit import TrainingJob, run
from stages.training.history import FIT_SUMMARY
from stages.training.model_file import save_model

logger = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages train")
    parser.add_argument("model_name")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True, help="the run record: timings and environment")
    parser.add_argument("--backup", type=Path, help="directory for the per-epoch backup that lets a killed run resume")
    args = parser.parse_args(argv)

    params = load_model_run(args.model_name, model_check=model_problems)
    job = TrainingJob(params.spec, train_settings(params.train), params.numerics, "train", args.data, args.log, args.record, args.backup)

    def save(model: keras.Model, summary: dict[str, Any], train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> None:
        save_model(model, args.model)
        write_json(args.log / FIT_SUMMARY, summary)
        logger.info("%s: %d epochs -> %s", job.spec.name, summary["epochs"], args.model)

    run(job, save)
