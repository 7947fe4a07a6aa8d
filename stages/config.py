"""Load `params.yaml` into typed, frozen objects, rejecting anything unknown by its key path.

This is the one place that reads the params file. Stages call `load_params()` and pass plain values
on to the functions that do the work. The checks here need no TensorFlow; the checks that need
Keras (layer and optimizer names, arguments, whether the layers connect) live in
`stages.builder.model_problems`. A stage that builds models passes that function as `model_check`,
and its problems join the file-level ones in one `ParamsError` naming the file that was read.

Check a params file by hand with `python -m stages check`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from stages.errors import StageError

PARAMS_FILE = Path("params.yaml")

DOWNLOAD_SOURCES = ("keras", "pypi", "local")
PRECISIONS = ("float32", "mixed_bfloat16")


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-4` as a number the way DVC (YAML 1.2) does, not as a string."""


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_yaml(text: str) -> Any:
    """Parse YAML as DVC does: `safe_load`, with YAML 1.2's exponent floats (`1e-4`)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


class ParamsError(StageError, ValueError):
    """One or more problems in a params file, each named by its key path."""

    def __init__(self, problems: list[tuple[str, str]], source: str = str(PARAMS_FILE)) -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  {path}: {message}" for path, message in self.problems]
        super().__init__("\n".join(lines))


@dataclasses.dataclass(frozen=True)
class DownloadParams:
    sources: tuple[str, ...]
    local_file: str | None


@dataclasses.dataclass(frozen=True)
class PrepareParams:
    train_size: int | None
    test_size: int | None


@dataclasses.dataclass(frozen=True)
class TrainParams:
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


@dataclasses.dataclass(frozen=True)
class ReportParams:
    """Rules behind the report's observations and claim verdicts, and how many digits its figures show."""

    overfit_loss_ratio: float
    chance_accuracy: float
    convergence_accuracy: float
    significance_level: float
    min_accuracy_difference: float
    min_epoch_difference: float
    sample_digits: int
    misclassified_digits: int


@dataclasses.dataclass(frozen=True)
class AblationParams:
    """Variants of the models that change one thing, trained at `seeds` only (no cached model)."""

    seeds: tuple[int, ...]
    models: Mapping[str, ModelSpec]


@dataclasses.dataclass(frozen=True)
class Params:
    download: DownloadParams
    prepare: PrepareParams
    train: TrainParams
    replica_seeds: tuple[int, ...]
    models: Mapping[str, ModelSpec]
    ablations: AblationParams
    report: ReportParams

    def spec(self, name: str) -> ModelSpec:
        """A model or an ablation by name; `ParamsError` listing both if there is none."""
        if name in self.models:
            return self.models[name]
        if name in self.ablations.models:
            return self.ablations.models[name]
        declared = ", ".join([*self.models, *self.ablations.models])
        raise ParamsError([(f"models.{name}", f"no such model or ablation; declared: {declared}")])


# Checks that need Keras: given the declarations that parsed, keyed by their key path
# (`models.model1`, `ablations.models.model2_adam`), their problems by key path.
ModelCheck = Callable[[Mapping[str, ModelSpec]], list[tuple[str, str]]]


class _Checker:
    """Collects every problem of one file, so that a user sees them all at once."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def mapping(self, value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
        """Return `value` as a dict if it is a mapping with exactly the allowed keys, else {}."""
        if not isinstance(value, Mapping):
            self.add(path, f"expected a mapping, got {_describe(value)}")
            return {}
        for key in value:
            if key not in required and key not in optional:
                allowed = ", ".join(required + optional)
                self.add(_join(path, key), f"unknown key (allowed here: {allowed})")
        for key in required:
            if key not in value:
                self.add(_join(path, key), "missing")
        return dict(value)

    def integer(self, value: Any, path: str, minimum: int | None = None, nullable: bool = False) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "an integer or null" if nullable else "an integer"
            self.add(path, f"expected {expected}, got {_describe(value)}")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"must be at least {minimum}, got {value}")
            return None
        return value

    def number(self, value: Any, path: str, minimum: float, maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.add(path, f"expected a number, got {_describe(value)}")
            return math.nan
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
            self.add(path, f"must be {bounds}, got {value}")
        return float(value)

    def string(self, value: Any, path: str, choices: tuple[str, ...] | None = None) -> str | None:
        if not isinstance(value, str) or not value:
            self.add(path, f"expected a non-empty string, got {_describe(value)}")
            return None
        if choices is not None and value not in choices:
            self.add(path, f"must be one of {', '.join(choices)}, got {value!r}")
            return None
        return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"string {value!r}"
    return f"{type(value).__name__} {value!r}"


def _finite_numbers_only(value: Any, path: str, checker: _Checker) -> None:
    """Reject NaN and infinity anywhere in layer or optimizer arguments: YAML allows `.nan`."""
    if isinstance(value, float) and not math.isfinite(value):
        checker.add(path, f"must be a finite number, got {value}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _finite_numbers_only(item, _join(path, key), checker)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite_numbers_only(item, f"{path}[{index}]", checker)


def _parse_download(raw: Any, checker: _Checker) -> DownloadParams:
    section = checker.mapping(raw, "download", ("sources",), ("local_file",))
    sources: list[str] = []
    raw_sources = section.get("sources", [])
    if not isinstance(raw_sources, list) or not raw_sources:
        checker.add("download.sources", f"expected a non-empty list, got {_describe(raw_sources)}")
    else:
        for index, source in enumerate(raw_sources):
            name = checker.string(source, f"download.sources[{index}]", DOWNLOAD_SOURCES)
            if name is not None:
                sources.append(name)
    local_file = section.get("local_file")
    if local_file is not None:
        local_file = checker.string(local_file, "download.local_file")
    return DownloadParams(sources=tuple(sources), local_file=local_file)


def _parse_prepare(raw: Any, checker: _Checker) -> PrepareParams:
    section = checker.mapping(raw, "prepare", ("train_size", "test_size"))
    return PrepareParams(
        train_size=checker.integer(section.get("train_size"), "prepare.train_size", minimum=1, nullable=True),
        test_size=checker.integer(section.get("test_size"), "prepare.test_size", minimum=1, nullable=True),
    )


def _parse_train(raw: Any, checker: _Checker) -> TrainParams:
    section = checker.mapping(raw, "train", ("epochs", "batch_size", "seed"))
    return TrainParams(
        epochs=checker.integer(section.get("epochs"), "train.epochs", minimum=1) or 0,
        batch_size=checker.integer(section.get("batch_size"), "train.batch_size", minimum=1) or 0,
        seed=checker.integer(section.get("seed"), "train.seed", minimum=0) or 0,
    )


def _seed_list(raw: Any, path: str, checker: _Checker) -> tuple[int, ...]:
    if not isinstance(raw, list):
        checker.add(path, f"expected a list of seeds (integers >= 0), got {_describe(raw)}")
        return ()
    seeds = [checker.integer(seed, f"{path}[{index}]", minimum=0) for index, seed in enumerate(raw)]
    valid = [seed for seed in seeds if seed is not None]
    duplicates = sorted({seed for seed in valid if valid.count(seed) > 1})
    if duplicates:
        checker.add(path, f"seeds must differ; repeated: {', '.join(map(str, duplicates))}")
    return tuple(valid)


def _parse_replicas(raw: Any, checker: _Checker, main_seed: int) -> tuple[int, ...]:
    section = checker.mapping(raw, "replicas", ("seeds",))
    seeds = _seed_list(section.get("seeds", []), "replicas.seeds", checker)
    if main_seed in seeds:
        checker.add("replicas.seeds", f"must not repeat the main run's seed train.seed = {main_seed}")
    return seeds


def _parse_ablations(raw: Any, checker: _Checker, seeds: tuple[int, ...], models: Mapping[str, ModelSpec]) -> AblationParams:
    section = checker.mapping(raw, "ablations", ("seeds", "models"))
    ablation_seeds = _seed_list(section.get("seeds", []), "ablations.seeds", checker)
    if set(ablation_seeds) != set(seeds):
        checker.add("ablations.seeds", f"must be train.seed and replicas.seeds, {sorted(seeds)}; got {sorted(ablation_seeds)}")
    ablations: dict[str, ModelSpec] = {}
    raw_models = section.get("models", {})
    if not isinstance(raw_models, Mapping):
        checker.add("ablations.models", f"expected a mapping of name to model declaration, got {_describe(raw_models)}")
        raw_models = {}
    for name, raw_model in raw_models.items():
        if not _valid_name(name):
            checker.add(f"ablations.models.{name}", "model names may use letters, digits, '-' and '_' only")
            continue
        if name in models:
            checker.add(f"ablations.models.{name}", "this name is already a model under `models`")
            continue
        model = _parse_model(name, raw_model, checker, "ablations.models")
        if model is not None:
            ablations[name] = model
    return AblationParams(seeds=ablation_seeds, models=ablations)


def _parse_report(raw: Any, checker: _Checker) -> ReportParams:
    keys = (
        "overfit_loss_ratio",
        "chance_accuracy",
        "convergence_accuracy",
        "significance_level",
        "min_accuracy_difference",
        "min_epoch_difference",
        "sample_digits",
        "misclassified_digits",
    )
    section = checker.mapping(raw, "report", keys)
    return ReportParams(
        overfit_loss_ratio=checker.number(section.get("overfit_loss_ratio"), "report.overfit_loss_ratio", minimum=1.0),
        chance_accuracy=checker.number(section.get("chance_accuracy"), "report.chance_accuracy", minimum=0.0, maximum=1.0),
        convergence_accuracy=checker.number(section.get("convergence_accuracy"), "report.convergence_accuracy", minimum=0.0, maximum=1.0),
        significance_level=checker.number(section.get("significance_level"), "report.significance_level", minimum=1e-6, maximum=0.5),
        min_accuracy_difference=checker.number(section.get("min_accuracy_difference"), "report.min_accuracy_difference", minimum=0.0, maximum=1.0),
        min_epoch_difference=checker.number(section.get("min_epoch_difference"), "report.min_epoch_difference", minimum=0.0),
        sample_digits=checker.integer(section.get("sample_digits"), "report.sample_digits", minimum=1) or 0,
        misclassified_digits=checker.integer(section.get("misclassified_digits"), "report.misclassified_digits", minimum=1) or 0,
    )


def _parse_class_and_arguments(raw: Any, path: str, checker: _Checker) -> tuple[str, dict[str, Any]] | None:
    """A layer is written `{ClassName: {argument: value, ...}}`; arguments may be omitted."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        checker.add(path, f"expected a single-key mapping {{LayerClass: {{arguments}}}}, got {_describe(raw)}")
        return None
    ((class_name, arguments),) = raw.items()
    if not isinstance(class_name, str):
        checker.add(path, f"layer class name must be a string, got {_describe(class_name)}")
        return None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        checker.add(_join(path, class_name), f"expected a mapping of arguments, got {_describe(arguments)}")
        return None
    _finite_numbers_only(dict(arguments), _join(path, class_name), checker)
    return class_name, dict(arguments)


def _valid_name(name: Any) -> bool:
    return isinstance(name, str) and name.replace("_", "").replace("-", "").isalnum()


def _parse_model(name: str, raw: Any, checker: _Checker, parent: str = "models") -> ModelSpec | None:
    path = f"{parent}.{name}"
    section = checker.mapping(raw, path, ("layers", "optimizer", "loss"), ("precision",))
    layers: list[LayerSpec] = []
    raw_layers = section.get("layers", [])
    if not isinstance(raw_layers, list) or not raw_layers:
        checker.add(f"{path}.layers", f"expected a non-empty list of layers, got {_describe(raw_layers)}")
    else:
        for index, raw_layer in enumerate(raw_layers):
            parsed = _parse_class_and_arguments(raw_layer, f"{path}.layers[{index}]", checker)
            if parsed is not None:
                layers.append(LayerSpec(class_name=parsed[0], arguments=parsed[1]))

    optimizer = None
    raw_optimizer = section.get("optimizer")
    if raw_optimizer is not None:
        if not isinstance(raw_optimizer, Mapping) or "name" not in raw_optimizer:
            checker.add(f"{path}.optimizer", f"expected a mapping with a `name` key, got {_describe(raw_optimizer)}")
        else:
            optimizer_name = checker.string(raw_optimizer["name"], f"{path}.optimizer.name")
            arguments = {key: value for key, value in raw_optimizer.items() if key != "name"}
            _finite_numbers_only(arguments, f"{path}.optimizer", checker)
            rate = arguments.get("learning_rate")
            if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate <= 0:
                checker.add(f"{path}.optimizer.learning_rate", f"must be greater than 0, got {rate}")
                optimizer_name = None
            if optimizer_name is not None:
                optimizer = OptimizerSpec(class_name=optimizer_name, arguments=arguments)

    loss = checker.string(section.get("loss"), f"{path}.loss") if "loss" in section else None
    precision = checker.string(section.get("precision", "float32"), f"{path}.precision", PRECISIONS)
    if optimizer is None or loss is None or precision is None or len(layers) != len(raw_layers or []):
        return None
    return ModelSpec(name=name, layers=tuple(layers), optimizer=optimizer, loss=loss, precision=precision)


def parse_params(raw: Any, source: str = str(PARAMS_FILE), model_check: ModelCheck | None = None) -> Params:
    """Turn the parsed YAML document into `Params`, or raise `ParamsError` listing every problem.

    `model_check`, if given, runs on every model and ablation that parsed, and its problems are
    reported together with the file-level ones.
    """
    checker = _Checker()
    document = checker.mapping(raw, "", ("download", "prepare", "train", "replicas", "models", "ablations", "report"))
    download = _parse_download(document.get("download", {}), checker)
    prepare = _parse_prepare(document.get("prepare", {}), checker)
    train = _parse_train(document.get("train", {}), checker)
    report = _parse_report(document.get("report", {}), checker)

    models: dict[str, ModelSpec] = {}
    raw_models = document.get("models", {})
    if not isinstance(raw_models, Mapping) or not raw_models:
        checker.add("models", f"expected a non-empty mapping of model name to declaration, got {_describe(raw_models)}")
    else:
        for name, raw_model in raw_models.items():
            if not _valid_name(name):
                checker.add(f"models.{name}", "model names may use letters, digits, '-' and '_' only")
                continue
            model = _parse_model(name, raw_model, checker)
            if model is not None:
                models[name] = model
    replica_seeds = _parse_replicas(document.get("replicas", {"seeds": []}), checker, train.seed)
    all_seeds = (train.seed, *replica_seeds)
    ablations = _parse_ablations(document.get("ablations", {"seeds": list(all_seeds), "models": {}}), checker, all_seeds, models)

    if model_check is not None:
        declared = {f"models.{name}": spec for name, spec in models.items()}
        declared.update({f"ablations.models.{name}": spec for name, spec in ablations.models.items()})
        for path, message in model_check(declared):
            checker.add(path, message)
    if checker.problems:
        raise ParamsError(checker.problems, source)
    return Params(download=download, prepare=prepare, train=train, replica_seeds=replica_seeds, models=models, ablations=ablations, report=report)


def load_params(path: Path | str = PARAMS_FILE, model_check: ModelCheck | None = None) -> Params:
    """Read and check a params file; raise `ParamsError` naming the file and every bad key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ParamsError([("", f"cannot read the file: {error.strerror}")], str(path)) from error
    try:
        raw = read_yaml(text)
    except yaml.YAMLError as error:
        raise ParamsError([("", f"not valid YAML: {error}")], str(path)) from error
    return parse_params(raw, str(path), model_check)
