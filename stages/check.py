"""Check `params.yaml` without touching any data: `python -m stages check`.

Builds every declared model against Keras and reports all problems, each by its key path.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stages.builder import model_problems
from stages.config import PARAMS_FILE, load_params

logger = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages check")
    parser.add_argument("params", nargs="?", type=Path, default=PARAMS_FILE)
    args = parser.parse_args(argv)
    params = load_params(args.params, model_check=model_problems)
    names = [*params.models, *params.ablations.models]
    logger.info("%s: OK (%d models and ablations: %s)", args.params, len(names), ", ".join(names))
