"""Variant stage: an ablation expanded into the model it trains, its base with its one change applied.

Run: `python -m stages variant model4_glorot --out reports/variants/model4_glorot.json`. The file is
the full declaration, in `params.yaml`'s model format, that the ablation's `replica` runs train.
It exists so that what an ablation trains is a file DVC hashes: the stage reads every model (an
ablation may name any base) and reruns on any model edit, in a second and without TensorFlow, but
rewrites its file only when the expanded declaration changes, so an edit of Model 2 retrains Model
2's ablations and not Model 4's.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stages.files import write_json
from stages.params.base import ParamsError
from stages.params.training import declaration, load_training

logger = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages variant")
    parser.add_argument("variant_name", help="a key of `ablations.models` in params.yaml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    params = load_training()
    if args.variant_name not in params.ablations.models:
        raise ParamsError([(f"ablations.models.{args.variant_name}", f"no such ablation; declared: {', '.join(params.ablations.models) or 'none'}")])
    write_json(args.out, declaration(params.spec(args.variant_name)))
    logger.info("%s: %s with its change -> %s", args.variant_name, params.ablations.models[args.variant_name].base, args.out)
