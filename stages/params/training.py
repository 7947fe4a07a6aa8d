"""The training schema: `train`, `replicas`, `models` and `ablations`, and the specs stages train from.

A model is data: Keras layers by class name with their arguments, an optimizer by name with its
arguments, a loss and a precision. An ablation names a base model and the one thing it changes, and
is expanded into a full spec here, so the training code never sees the difference.

Checks that need Keras (known layers and arguments, layers that connect) live in
`stages.training.builder.model_problems`; `load_training` runs them when given, and reports their
problems together with this file's, every one by key path.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic

from stages.params.base import PARAMS_FILE, ParamsError, Problem, Strict, problems_of, read_document
from stages.params.numerics import Numerics, NumericsSection, bf16_problem

Precision = Literal["float32", "mixed_bfloat16"]
# DVC stage names are built from these (`train@model1`, `replica@model1-3`): letters, digits, '_', '-'.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
ModelName = Annotated[str, pydantic.StringConstraints(pattern=f"^{MODEL_NAME.pattern}$")]
Seed = Annotated[int, pydantic.Field(ge=0)]


def _finite(value: Any, path: str = "") -> Any:
    """Reject NaN and infinity anywhere in a layer's or optimizer's arguments (YAML allows `.nan`)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path or 'value'} must be a finite number, got {value}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _finite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite(item, f"{path}[{index}]")
    return value


def _one_layer(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) != 1:
        raise ValueError(f"expected a single-key mapping {{LayerClass: {{arguments}}}}, got keys {list(value)}")
    ((name, arguments),) = value.items()
    return {name: _finite(dict(arguments or {}))}


Layer = Annotated[dict[str, dict[str, Any] | None], pydantic.AfterValidator(_one_layer)]


class Optimizer(Strict):
    """A `keras.optimizers` class by name; every other key is an argument Keras checks."""

    model_config = pydantic.ConfigDict(strict=True, extra="allow", frozen=True)

    name: str = pydantic.Field(min_length=1)
    learning_rate: float | None = pydantic.Field(default=None, gt=0, allow_inf_nan=False)

    @pydantic.model_validator(mode="after")
    def _finite_arguments(self) -> Optimizer:
        _finite(dict(self.model_extra or {}))
        return self

    def arguments(self) -> dict[str, Any]:
        values = dict(self.model_extra or {})
        if self.learning_rate is not None:
            values = {"learning_rate": self.learning_rate, **values}
        return values


class Model(Strict):
    layers: list[Layer] = pydantic.Field(min_length=1)
    optimizer: Optimizer
    loss: str = pydantic.Field(min_length=1)
    precision: Precision = "float32"


class Variant(Strict):
    """An ablation: `base` (a key of `models`) and exactly one change to it."""

    base: str
    # Set these arguments in every layer of the base that declares them (the change is to an argument
    # the base chose, such as Model 4's `kernel_initializer`).
    layer_arguments: dict[str, Any] | None = None
    optimizer: Optimizer | None = None
    loss: str | None = None
    precision: Precision | None = None

    @pydantic.model_validator(mode="after")
    def _one_change(self) -> Variant:
        changes = self.changes()
        if len(changes) != 1:
            raise ValueError(f"an ablation declares exactly one change (layer_arguments, optimizer, loss or precision); got {changes or 'none'}")
        if self.layer_arguments is not None:
            _finite(self.layer_arguments)
        return self

    def changes(self) -> list[str]:
        return [name for name in ("layer_arguments", "optimizer", "loss", "precision") if getattr(self, name) is not None]


class Train(Strict):
    epochs: int = pydantic.Field(ge=1)
    batch_size: int = pydantic.Field(ge=1)
    # The main run's seed: weights and the per-epoch shuffle of the `train` stage.
    seed: Seed


class TrainSection(Strict):
    """The `train` section alone, for a stage that reads only it (evaluate)."""

    train: Train


class Replicas(Strict):
    seeds: list[Seed] = []


class Ablations(Strict):
    seeds: list[Seed] = []
    models: dict[ModelName, Variant] = {}


class TrainingParams(Strict):
    train: Train
    replicas: Replicas = Replicas()
    models: dict[ModelName, Model] = pydantic.Field(min_length=1)
    ablations: Ablations = Ablations()

    def spec(self, name: str) -> ModelSpec:
        """A model or an ablation (expanded from its base) by name; `ParamsError` listing both if none."""
        if name in self.models:
            return model_spec(name, self.models[name])
        if name in self.ablations.models:
            return ablation_spec(name, self.ablations.models[name], self.models)
        declared = ", ".join([*self.models, *self.ablations.models])
        raise ParamsError([(f"models.{name}", f"no such model or ablation; declared: {declared}")])

    def specs(self) -> dict[str, ModelSpec]:
        """Every model and ablation by the key path it is declared under."""
        found = {f"models.{name}": self.spec(name) for name in self.models}
        found.update({f"ablations.models.{name}": self.spec(name) for name in self.ablations.models})
        return found


# The plain values the training code takes (it never sees the params file).


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    seed: int


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One Keras layer: its class name in `keras.layers` and the keyword arguments for it."""

    class_name: str
    arguments: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    class_name: str
    arguments: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: tuple[LayerSpec, ...]
    optimizer: OptimizerSpec
    loss: str
    precision: str


def train_settings(train: Train, seed: int | None = None) -> TrainSettings:
    return TrainSettings(epochs=train.epochs, batch_size=train.batch_size, seed=train.seed if seed is None else seed)


def model_spec(name: str, model: Model) -> ModelSpec:
    layers = tuple(LayerSpec(class_name, dict(arguments or {})) for layer in model.layers for class_name, arguments in layer.items())
    optimizer = OptimizerSpec(model.optimizer.name, model.optimizer.arguments())
    return ModelSpec(name=name, layers=layers, optimizer=optimizer, loss=model.loss, precision=model.precision)


def declaration(spec: ModelSpec) -> dict[str, Any]:
    """`spec` as `params.yaml` declares a model (what `Model` validates): the variant stage writes this."""
    return {
        "layers": [{layer.class_name: dict(layer.arguments)} for layer in spec.layers],
        "optimizer": {"name": spec.optimizer.class_name, **spec.optimizer.arguments},
        "loss": spec.loss,
        "precision": spec.precision,
    }


def ablation_spec(name: str, variant: Variant, models: Mapping[str, Model]) -> ModelSpec:
    """The base model's spec with the variant's one change applied."""
    if variant.base not in models:
        raise ParamsError([(f"ablations.models.{name}.base", f"no model {variant.base!r} under `models`; declared: {', '.join(models)}")])
    base = model_spec(name, models[variant.base])
    if variant.layer_arguments is not None:
        layers = tuple(
            LayerSpec(layer.class_name, {**layer.arguments, **{key: value for key, value in variant.layer_arguments.items() if key in layer.arguments}})
            for layer in base.layers
        )
        return dataclasses.replace(base, layers=layers)
    if variant.optimizer is not None:
        return dataclasses.replace(base, optimizer=OptimizerSpec(variant.optimizer.name, variant.optimizer.arguments()))
    if variant.loss is not None:
        return dataclasses.replace(base, loss=variant.loss)
    return dataclasses.replace(base, precision=variant.precision)


def _variant_problems(name: str, variant: Variant, models: Mapping[str, Model]) -> list[Problem]:
    """An ablation must name an existing base and its change must change that base."""
    path = f"ablations.models.{name}"
    if name in models:
        return [(path, "this name is already a model under `models`")]
    if variant.base not in models:
        return [(f"{path}.base", f"no model {variant.base!r} under `models`; declared: {', '.join(models)}")]
    base = model_spec(variant.base, models[variant.base])
    if variant.layer_arguments is not None:
        declared = {key for layer in base.layers for key in layer.arguments}
        unknown = sorted(set(variant.layer_arguments) - declared)
        if unknown:
            return [(f"{path}.layer_arguments", f"no layer of {variant.base} declares {', '.join(unknown)}: there is nothing to change")]
    if dataclasses.replace(ablation_spec(name, variant, models), name=variant.base) == base:
        return [(path, f"the change leaves {variant.base} as it is")]
    return []


def _seed_problems(params: TrainingParams) -> list[Problem]:
    problems: list[Problem] = []
    for path, seeds in (("replicas.seeds", params.replicas.seeds), ("ablations.seeds", params.ablations.seeds)):
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            problems.append((path, f"seeds must differ; repeated: {', '.join(map(str, repeated))}"))
    if params.train.seed in params.replicas.seeds:
        problems.append(("replicas.seeds", f"must not repeat the main run's seed train.seed = {params.train.seed}"))
    every = {params.train.seed, *params.replicas.seeds}
    if set(params.ablations.seeds) != every:
        problems.append(("ablations.seeds", f"must be train.seed and replicas.seeds, {sorted(every)}; got {sorted(params.ablations.seeds)}"))
    return problems


# Checks that need Keras: given specs keyed by the key path they come from, their problems by key path.
ModelCheck = Callable[[Mapping[str, ModelSpec]], list[Problem]]


def training_problems(document: Mapping[str, Any], model_check: ModelCheck | None = None) -> tuple[TrainingParams | None, list[Problem]]:
    """Validate the training sections of a parsed params file; every problem at once.

    When the file as a whole does not validate, each model that does is still checked against Keras,
    so a user sees a typo in an optimizer name together with a bad `train.epochs`.
    """
    sections = {name: document[name] for name in TrainingParams.model_fields if name in document}
    try:
        params = TrainingParams.model_validate(sections)
    except pydantic.ValidationError as error:
        problems = problems_of(error)
        if model_check is not None:
            valid: dict[str, ModelSpec] = {}
            raw_models = sections.get("models")
            for name, raw in raw_models.items() if isinstance(raw_models, Mapping) else []:
                if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
                    continue  # the schema has named it already; Keras would only add a traceback
                try:
                    valid[f"models.{name}"] = model_spec(str(name), Model.model_validate(raw))
                except pydantic.ValidationError:
                    continue
            problems += model_check(valid)
        return None, problems
    problems = _seed_problems(params)
    variant_problems = {name: _variant_problems(name, variant, params.models) for name, variant in params.ablations.models.items()}
    problems += [problem for found in variant_problems.values() for problem in found]
    if model_check is not None:
        model_found = model_check({f"models.{name}": params.spec(name) for name in params.models})
        problems += model_found
        # An ablation is checked only where its base is sound: a base's problem is reported once, at the base.
        broken = {
            name for name in params.models for path, _ in model_found if path == f"models.{name}" or path.startswith((f"models.{name}.", f"models.{name}["))
        }
        sound = {
            f"ablations.models.{name}": params.spec(name)
            for name, variant in params.ablations.models.items()
            if not variant_problems[name] and variant.base not in broken
        }
        problems += model_check(sound)
    return params, problems


def load_training(path: Path | str = PARAMS_FILE, model_check: ModelCheck | None = None) -> TrainingParams:
    """Read `path`'s training sections; `ParamsError` naming the file and every problem."""
    params, problems = training_problems(read_document(path), model_check)
    if problems or params is None:
        raise ParamsError(problems, str(path))
    return params


@dataclasses.dataclass(frozen=True)
class ModelRun:
    """What one training stage reads: its model's spec, the `train` settings and the numerics."""

    spec: ModelSpec
    train: Train
    numerics: Numerics


def _section_problems(schema: type[pydantic.BaseModel], value: Any, prefix: tuple[str, ...]) -> tuple[Any, list[Problem]]:
    try:
        return schema.model_validate(value), []
    except pydantic.ValidationError as error:
        return None, problems_of(error, prefix)


def load_model_run(name: str, path: Path | str = PARAMS_FILE, declaration: Mapping[str, Any] | None = None, model_check: ModelCheck | None = None) -> ModelRun:
    """The sections one training stage declares as params, and no others: `train`, `numerics` and
    `models.<name>`, or, for an ablation, the expanded `declaration` the variant stage wrote.
    `ParamsError` naming the file and every problem, the Keras-level ones included."""
    document = read_document(path)
    problems: list[Problem] = []
    model_path = f"models.{name}" if declaration is None else f"ablations.models.{name}"
    if declaration is None:
        models = document.get("models")
        if not isinstance(models, Mapping) or name not in models:
            declared = ", ".join(map(str, models)) if isinstance(models, Mapping) else "none"
            raise ParamsError([(model_path, f"no such model; declared: {declared}")], str(path))
        declaration = models[name]
    model, found = _section_problems(Model, declaration, (*model_path.split("."),))
    problems += found
    train, found = _section_problems(Train, document.get("train"), ("train",))
    problems += found
    section, found = _section_problems(NumericsSection, {"numerics": document.get("numerics")}, ())
    problems += found
    if model is not None:
        spec = model_spec(name, model)
        if section is not None and spec.precision == "mixed_bfloat16" and bf16_problem(section.numerics):
            problems.append((f"{model_path}.precision", bf16_problem(section.numerics)))
        if model_check is not None:
            problems += model_check({model_path: spec})
    if problems:
        raise ParamsError(problems, str(path))
    return ModelRun(spec, train, section.numerics)


def bf16_problems(document: Mapping[str, Any], params: TrainingParams) -> list[Problem]:
    """Every mixed_bfloat16 model or ablation that the pinned numerics cannot run, by key path."""
    try:
        numerics = NumericsSection.model_validate({"numerics": document.get("numerics")}).numerics
    except pydantic.ValidationError:
        return []
    problem = bf16_problem(numerics)
    if problem is None:
        return []
    declared = {f"models.{name}": params.spec(name) for name in params.models}
    # An ablation whose base is missing has its own problem already.
    declared |= {f"ablations.models.{name}": params.spec(name) for name, variant in params.ablations.models.items() if variant.base in params.models}
    return [(f"{path}.precision", problem) for path, spec in declared.items() if spec.precision == "mixed_bfloat16"]
