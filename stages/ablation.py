"""Ablation stage: train an ablation of `ablations.models` (its base with one change) at one seed; keep its history, metrics and predictions, no model.

Run: `python -m stages ablation model4_glorot --seed 1 --data data/prepared --out reports/ablations/model4_glorot/seed-1
--record reports/runs/ablation/model4_glorot-seed-1.json --backup checkpoints/ablations/model4_glorot/seed-1`
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
    parser = argparse.ArgumentParser(prog="python -m stages ablation")
    parser.add_argument("model_name", help="a key of `ablations.models` in params.yaml")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True, help="the run record: timings and environment")
    parser.add_argument("--backup", type=Path, help="directory for the per-epoch backup that lets a killed run resume")
    args = parser.parse_args(argv)

    params = load_training(model_check=model_problems)
    if args.model_name not in params.ablations.models:
        raise ParamsError([(f"ablations.models.{args.model_name}", f"no such entry; declared: {', '.join(params.ablations.models)}")])
    train_and_score(params.spec(args.model_name), train_settings(params, args.seed), args.data, args.out, args.backup, "ablation", args.record)
