"""Report stage: the notebook's comparison table for all models, as Markdown and as a DVC metric.

Run: `python -m stages report --eval reports/eval --training reports/training --markdown reports/summary.md --json reports/summary.json`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stages import summary
from stages.config import load_params
from stages.history import FIT_SUMMARY
from stages.io import read_json, write_json, write_text

logger = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages report")
    parser.add_argument("--eval", type=Path, required=True)
    parser.add_argument("--training", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)

    models = load_params().models
    metrics = {name: read_json(args.eval / name / "metrics.json") for name in models}
    fits = {name: read_json(args.training / name / FIT_SUMMARY) for name in models}
    table = summary.rows(models, metrics, fits)
    first = next(iter(models))
    write_json(args.json, summary.metrics_by_model(table))
    write_text(args.markdown, summary.summary_markdown(table, fits[first]["train_images"], metrics[first]["test_images"]))
    logger.info("%s", summary.markdown_table(table))
