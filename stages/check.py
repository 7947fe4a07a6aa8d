"""Check `params.yaml` without touching any data: `python -m stages check [file]`.

Validates every concern's schema (data, training, report) and builds every declared model and
ablation against Keras; all problems come in one message, each by its key path.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pydantic

from stages.params.base import PARAMS_FILE, ParamsError, problems_of, read_document
from stages.params.data import DataParams
from stages.params.report import report_problems
from stages.params.training import training_problems
from stages.training.builder import model_problems

logger = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages check")
    parser.add_argument("params", nargs="?", type=Path, default=PARAMS_FILE)
    args = parser.parse_args(argv)
    document = read_document(args.params)
    problems = []
    try:
        DataParams.model_validate({name: document[name] for name in DataParams.model_fields if name in document})
    except pydantic.ValidationError as error:
        problems += problems_of(error)
    training, training_found = training_problems(document, model_problems)
    problems += training_found
    problems += report_problems(document, training)
    known = set(DataParams.model_fields) | {"train", "replicas", "models", "ablations", "report"}
    problems += [(str(name), "unknown section") for name in document if name not in known]
    if problems or training is None:
        raise ParamsError(problems, str(args.params))
    names = [*training.models, *training.ablations.models]
    logger.info("%s: OK (%d models and ablations: %s)", args.params, len(names), ", ".join(names))
