"""The report schema: the rules behind the report's observations and claim verdicts, and which
models each of the notebook's claims compares. Read by the `report` stage only, so editing it
reruns the report and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic

from stages.params.base import PARAMS_FILE, ParamsError, Problem, Strict, problems_of, read_document
from stages.params.training import TrainingParams, training_problems

Fraction = pydantic.confloat(strict=True, ge=0.0, le=1.0)


class Better(Strict):
    """A model and the models a claim says it beats."""

    model: str
    than: list[str] = pydantic.Field(min_length=1)


class ClaimModels(Strict):
    """The models (keys of `models` or `ablations.models`) that each claim is about; what each claim
    says and how it is decided is declared once, in `stages/reporting/claims.py: CLAIMS`."""

    overfits: str  # claim 1: this model overfits
    better: Better  # claim 2
    stuck: str  # claim 3: this model is stuck at chance and the worst
    faster_convergence: Better  # claim 4 (one change apart)
    best: str  # claim 5: this model beats every other main model
    best_optimizer: Better  # claim 6 (same layers, other optimizers)

    def names(self) -> list[tuple[str, str]]:
        """(key path, model name) for every name declared."""
        found: list[tuple[str, str]] = []
        for field in type(self).model_fields:
            value = getattr(self, field)
            if isinstance(value, str):
                found.append((f"report.claims.{field}", value))
            else:
                found.append((f"report.claims.{field}.model", value.model))
                found += [(f"report.claims.{field}.than[{index}]", name) for index, name in enumerate(value.than)]
        return found


class ReportParams(Strict):
    significance_level: float = pydantic.Field(ge=1e-6, le=0.5)
    families: Literal["per_claim", "all_claims"]
    failure_test: Literal["boschloo", "fisher"]
    combine_seeds: Literal["stouffer", "fisher"]
    min_accuracy_difference: Fraction
    min_loss_difference: float = pydantic.Field(gt=0.0)
    convergence_window: int = pydantic.Field(ge=1)
    min_convergence_difference: Fraction
    min_train_loss_difference: float = pydantic.Field(gt=0.0)
    convergence_accuracy: Fraction
    overfit_window: int = pydantic.Field(ge=2)
    overfit_significance: float = pydantic.Field(gt=0.0, lt=1.0)
    overfit_slope_bound: float = pydantic.Field(gt=0.0)
    landscape_tolerance: float = pydantic.Field(gt=0.0)
    chance_accuracy: Fraction
    power_target: float = pydantic.Field(gt=0.0, lt=1.0)
    power_max_seeds: int = pydantic.Field(ge=2, le=10_000)
    simulations: int = pydantic.Field(ge=100)
    simulation_seed: int = pydantic.Field(ge=0)
    sample_digits: int = pydantic.Field(ge=1)
    misclassified_digits: int = pydantic.Field(ge=1)
    claims: ClaimModels


class ReportSection(Strict):
    report: ReportParams


def report_problems(document: Mapping[str, Any], training: TrainingParams | None) -> list[Problem]:
    """The report section's problems; with the training params, also claims naming undeclared models."""
    try:
        section = ReportSection.model_validate({"report": document.get("report")})
    except pydantic.ValidationError as error:
        return problems_of(error)
    if training is None:
        return []
    declared = [*training.models, *training.ablations.models]
    return [(path, f"no model or ablation {name!r}; declared: {', '.join(declared)}") for path, name in section.report.claims.names() if name not in declared]


def load_report(path: Path | str = PARAMS_FILE) -> tuple[ReportParams, TrainingParams]:
    """The report's rules and the training params whose runs it reports; every problem at once."""
    document = read_document(path)
    training, problems = training_problems(document)
    problems += report_problems(document, training)
    if problems or training is None:
        raise ParamsError(problems, str(path))
    return ReportSection.model_validate({"report": document["report"]}).report, training
