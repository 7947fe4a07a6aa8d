"""Replica stage: train a model of `models` at one seed; keep its history, metrics and predictions, no model.

Run: `python -m stages replica model1 --seed 1 --data data/prepared --out reports/replicas/model1/seed-1
--record reports/runs/replica/model1-seed-1.json --backup checkpoints/replicas/model1/seed-1`
(see `stages/training/replicate.py`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stages.params.base import ParamsError
from stages.params.training import load_training, train_settings
from stages.training.builder import model_problems
from stages.training.replicate import train_and_score


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages replica")
    parser.add_argument("model_name", help="a key of `models` in params.yaml")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True, help="the run record: timings and environment")
    parser.add_argument("--backup", type=Path, help="directory for the per-epoch backup that lets a killed run resume")
    args = parser.parse_args(argv)

    params = load_training(model_check=model_problems)
    if args.model_name not in params.models:
        raise ParamsError([(f"models.{args.model_name}", f"no such entry; declared: {', '.join(params.models)}")])
    train_and_score(params.spec(args.model_name), train_settings(params, args.seed), args.data, args.out, args.backup, "replica", args.record)
