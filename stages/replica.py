"""Replica stage: train a model, or an ablation, at one seed; keep its history, metrics and predictions, no model.

Run, for a model of `models` (the `replica` stages):
`python -m stages replica model1 --seed 1 --data data/prepared --out reports/replicas/model1/seed-1
--record reports/runs/replica/model1-seed-1.json --backup checkpoints/replicas/model1/seed-1`;
for an ablation (the `ablation` stages), the declaration the `variant` stage expanded:
`python -m stages replica model4_glorot --variant reports/variants/model4_glorot.json --seed 1 ...`.
It reads the params its stage declares (`train`, `numerics`, and `models.<model>` or the variant
file) and checks that model against Keras first (see `stages/training/replicate.py`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stages.files import read_json
from stages.params.training import load_model_run, train_settings
from stages.training.builder import model_problems
from stages.training.fit import TrainingJob
from stages.training.replicate import train_and_score


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages replica")
    parser.add_argument("model_name", help="a key of `models` in params.yaml, or of `ablations.models` with --variant")
    parser.add_argument("--variant", type=Path, help="the ablation's expanded declaration (the variant stage's output)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True, help="the run record: timings and environment")
    parser.add_argument("--backup", type=Path, help="directory for the per-epoch backup that lets a killed run resume")
    args = parser.parse_args(argv)

    declaration = read_json(args.variant) if args.variant else None
    params = load_model_run(args.model_name, declaration=declaration, model_check=model_problems)
    stage = "ablation" if args.variant else "replica"
    job = TrainingJob(params.spec, train_settings(params.train, args.seed), params.numerics, stage, args.data, args.out / "training", args.record, args.backup)
    train_and_score(job, args.out)
