"""Load `params.yaml` into typed, frozen objects, rejecting anything unknown by its key path.

This is the one place that reads the params file. Stages call `load_params()` and pass plain values
on to the functions that do the work. The checks here need no TensorFlow; the checks that need
Keras (layer and optimizer names, arguments, whether the layers connect) live in
`stages.builder.validate_models`, which the training stage runs on every model before it trains.

Check a params file by hand with `python -m stages check`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
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
    """Rules behind the report's generated observations, and how many digits its figures show."""

    overfit_loss_ratio: float
    chance_accuracy: float
    convergence_accuracy: float
    sample_digits: int
    misclassified_digits: int


@dataclasses.dataclass(frozen=True)
class Params:
    download: DownloadParams
    prepare: PrepareParams
    train: TrainParams
    models: Mapping[str, ModelSpec]
    report: ReportParams


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


def _parse_report(raw: Any, checker: _Checker) -> ReportParams:
    keys = ("overfit_loss_ratio", "chance_accuracy", "convergence_accuracy", "sample_digits", "misclassified_digits")
    section = checker.mapping(raw, "report", keys)
    return ReportParams(
        overfit_loss_ratio=checker.number(section.get("overfit_loss_ratio"), "report.overfit_loss_ratio", minimum=1.0),
        chance_accuracy=checker.number(section.get("chance_accuracy"), "report.chance_accuracy", minimum=0.0, maximum=1.0),
        convergence_accuracy=checker.number(section.get("convergence_accuracy"), "report.convergence_accuracy", minimum=0.0, maximum=1.0),
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


def _parse_model(name: str, raw: Any, checker: _Checker) -> ModelSpec | None:
    path = f"models.{name}"
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
            if optimizer_name is not None:
                optimizer = OptimizerSpec(class_name=optimizer_name, arguments=arguments)

    loss = checker.string(section.get("loss"), f"{path}.loss") if "loss" in section else None
    precision = checker.string(section.get("precision", "float32"), f"{path}.precision", PRECISIONS)
    if optimizer is None or loss is None or precision is None or len(layers) != len(raw_layers or []):
        return None
    return ModelSpec(name=name, layers=tuple(layers), optimizer=optimizer, loss=loss, precision=precision)


def parse_params(raw: Any, source: str = str(PARAMS_FILE)) -> Params:
    """Turn the parsed YAML document into `Params`, or raise `ParamsError` listing every problem."""
    checker = _Checker()
    document = checker.mapping(raw, "", ("download", "prepare", "train", "models", "report"))
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
            if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
                checker.add(f"models.{name}", "model names may use letters, digits, '-' and '_' only")
                continue
            model = _parse_model(name, raw_model, checker)
            if model is not None:
                models[name] = model

    if checker.problems:
        raise ParamsError(checker.problems, source)
    return Params(download=download, prepare=prepare, train=train, models=models, report=report)


def load_params(path: Path | str = PARAMS_FILE) -> Params:
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
    return parse_params(raw, str(path))
