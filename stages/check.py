"""Check `params.yaml` without touching any data: `python -m stages check [file]`.

Validates every concern's schema (data, numerics, training, report) and builds every declared model and
ablation against Keras; all problems come in one message, each by its key path.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from stages.params.base import PARAMS_FILE, ParamsError, Problem, problems_of, read_document
from stages.params.data import DataParams
from stages.params.numerics import NumericsSection
from stages.params.report import ReportSection, report_problems
from stages.params.training import ModelCheck, TrainingParams, bf16_problems, training_problems
from stages.training.builder import model_problems

logger = logging.getLogger(__name__)


def document_problems(document: Mapping[str, Any], model_check: ModelCheck | None = model_problems) -> tuple[TrainingParams | None, list[Problem]]:
    """Every problem of a parsed params file, data, training and report alike, and the training params if they validate."""
    problems: list[Problem] = []
    # The data sections have defaults; `numerics` has none (the bytes depend on it): "missing".
    for schema in (DataParams, NumericsSection):
        sections = {name: document[name] for name in schema.model_fields if name in document}
        try:
            schema.model_validate(sections)
        except pydantic.ValidationError as error:
            problems += problems_of(error)
    training, training_found = training_problems(document, model_check)
    problems += training_found
    if training is not None:
        problems += bf16_problems(document, training)
    problems += report_problems(document, training)
    known = {*DataParams.model_fields, *NumericsSection.model_fields, *TrainingParams.model_fields, *ReportSection.model_fields}
    problems += [(str(name), "unknown section") for name in document if name not in known]
    return training, problems


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages check")
    parser.add_argument("params", nargs="?", type=Path, default=PARAMS_FILE)
    args = parser.parse_args(argv)
    training, problems = document_problems(read_document(args.params))
    if problems or training is None:
        raise ParamsError(problems, str(args.params))
    names = [*training.models, *training.ablations.models]
    logger.info("%s: OK (%d models and ablations: %s)", args.params, len(names), ", ".join(names))
