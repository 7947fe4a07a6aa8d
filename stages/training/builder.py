"""Build a compiled `keras.Sequential` from a model declared as data in `params.yaml`.

No model is written in Python: every model is a list of Keras layers by class name with their
arguments, an optimizer and a loss. `model_problems` checks declarations against Keras itself
(known class names, known arguments, values Keras accepts, layers that connect, an output of one
score per class) and names the exact key path of each problem, before any data is loaded.

A model's precision is Keras' global dtype policy while it is built (and, in the train stage,
while it trains): `precision_scope` sets it and puts the previous one back, so building a bf16
model never changes the next model's precision.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import keras
from keras import layers, losses, optimizers

from stages.params.base import ParamsError
from stages.params.training import LayerSpec, ModelSpec, OptimizerSpec

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

# Arguments every Keras layer takes through `**kwargs`, beyond those its own signature names.
_BASE_LAYER_ARGUMENTS = ("name", "dtype", "trainable")
# Required arguments that have no default to compare a value's type with.
_INTEGER_ARGUMENTS = ("filters", "units")


def _layer_class(name: str) -> type | None:
    candidate = getattr(layers, name, None)
    if inspect.isclass(candidate) and issubclass(candidate, layers.Layer) and candidate is not layers.InputLayer:
        return candidate
    return None


def _optimizer_class(name: str) -> type | None:
    candidate = getattr(optimizers, name, None)
    if inspect.isclass(candidate) and issubclass(candidate, optimizers.Optimizer) and candidate is not optimizers.Optimizer:
        return candidate
    return None


def _suggestion(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _public_names(module: Any, accept: Any) -> list[str]:
    return sorted(name for name in dir(module) if not name.startswith("_") and accept(name) is not None)


def _accepted_arguments(cls: type, extra: tuple[str, ...]) -> list[str]:
    parameters = inspect.signature(cls.__init__).parameters
    named = [name for name, parameter in parameters.items() if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)]
    return named + [name for name in extra if name not in named]


def _type_problems(cls: type, arguments: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """Catch values whose type differs from the argument's default, which Keras reports obscurely."""
    problems = []
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in arguments.items():
        parameter = parameters.get(key)
        default = parameter.default if parameter is not None else inspect.Parameter.empty
        if key in _INTEGER_ARGUMENTS or (type(default) is int and key != "seed"):
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append((f"{path}.{key}", f"expected an integer, got {value!r}"))
        elif type(default) is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append((f"{path}.{key}", f"expected a number, got {value!r}"))
        elif type(default) is bool and not isinstance(value, bool):
            problems.append((f"{path}.{key}", f"expected true or false, got {value!r}"))
    return problems


def _keras_message(error: Exception) -> str:
    """Keras wraps call errors in paragraphs with ANSI codes; keep the sentence that matters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    paragraphs = [part.strip() for part in text.split("\n\n") if part.strip()]
    for paragraph in paragraphs:
        if not paragraph.startswith(("Exception encountered", "Arguments received")):
            return " ".join(paragraph.split())
    return " ".join(text.split())


def _blame(path: str, arguments: dict[str, Any], message: str) -> str:
    """Point at the one argument a Keras error message names, when it names exactly one."""
    named = [key for key in arguments if re.search(rf"\b{re.escape(key)}\b", message)]
    return f"{path}.{named[0]}" if len(named) == 1 else path


def _instantiate(cls: type, class_name: str, arguments: dict[str, Any], path: str, extra: tuple[str, ...]) -> tuple[Any, list[tuple[str, str]]]:
    """Construct `cls(**arguments)`, or return the problems, each at the key path of its argument."""
    accepted = _accepted_arguments(cls, extra)
    problems = [(f"{path}.{key}", f"{class_name} has no argument {key!r}{_suggestion(key, accepted)}") for key in arguments if key not in accepted]
    problems += _type_problems(cls, arguments, path)
    if problems:
        return None, problems
    try:
        return cls(**arguments), []
    except (TypeError, ValueError) as error:
        message = _keras_message(error)
        return None, [(_blame(path, arguments, message), message)]


def _make_layer(spec: LayerSpec, path: str) -> tuple[layers.Layer | None, list[tuple[str, str]]]:
    cls = _layer_class(spec.class_name)
    if cls is None:
        hint = _suggestion(spec.class_name, _public_names(layers, _layer_class))
        return None, [(path, f"unknown Keras layer {spec.class_name!r}{hint}")]
    return _instantiate(cls, spec.class_name, dict(spec.arguments), f"{path}.{spec.class_name}", _BASE_LAYER_ARGUMENTS)


def _make_optimizer(spec: OptimizerSpec, path: str) -> tuple[optimizers.Optimizer | None, list[tuple[str, str]]]:
    cls = _optimizer_class(spec.class_name)
    if cls is None:
        hint = _suggestion(spec.class_name, _public_names(optimizers, _optimizer_class))
        return None, [(f"{path}.name", f"unknown Keras optimizer {spec.class_name!r}{hint}")]
    return _instantiate(cls, spec.class_name, dict(spec.arguments), path, ())


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Keras' global dtype policy set to `precision` inside the block, and restored after it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _assemble(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int, path: str = "") -> tuple[keras.Sequential | None, list[tuple[str, str]]]:
    """Create every layer and connect them one by one, so a failure names the layer that broke."""
    with precision_scope(spec.precision):
        return _assemble_in_policy(spec, input_shape, num_classes, path or f"models.{spec.name}")


def _assemble_in_policy(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int, path: str) -> tuple[keras.Sequential | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    built: list[layers.Layer] = []
    for index, layer_spec in enumerate(spec.layers):
        layer, layer_problems = _make_layer(layer_spec, f"{path}.layers[{index}]")
        problems += layer_problems
        if layer is not None:
            built.append(layer)
    optimizer, optimizer_problems = _make_optimizer(spec.optimizer, f"{path}.optimizer")
    problems += optimizer_problems
    try:
        loss = losses.get(spec.loss)
    except ValueError:
        loss = None
        problems.append((f"{path}.loss", f"unknown Keras loss {spec.loss!r}"))
    if problems:
        return None, problems

    tensor = keras.Input(shape=input_shape)
    for index, layer in enumerate(built):
        layer_path = f"{path}.layers[{index}]"
        try:
            tensor = layer(tensor)
        except (TypeError, ValueError) as error:
            return None, [(layer_path, f"cannot connect to the previous layer: {_keras_message(error)}")]
        if any(size is not None and size < 1 for size in tensor.shape):
            return None, [(layer_path, f"output shape {tuple(tensor.shape)} has an empty dimension; the image has shrunk below one pixel")]
    if tuple(tensor.shape) != (None, num_classes):
        return None, [
            (f"{path}.layers[{len(built) - 1}]", f"the model must end in one score per class, shape (None, {num_classes}); it ends in {tuple(tensor.shape)}")
        ]

    model = keras.Sequential([keras.Input(shape=input_shape), *built], name=spec.name)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model, []


def build_model(spec: ModelSpec, input_shape: tuple[int, ...] = INPUT_SHAPE, num_classes: int = NUM_CLASSES) -> keras.Sequential:
    """Return the compiled model a declaration describes, or raise `ParamsError` naming the key path."""
    model, problems = _assemble(spec, input_shape, num_classes)
    if problems:
        raise ParamsError(problems)
    return model


def count_trainable(model: keras.Model) -> int:
    """Trainable parameters, as Keras' summary reports them."""
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))


def model_problems(declared: Mapping[str, ModelSpec], input_shape: tuple[int, ...] = INPUT_SHAPE, num_classes: int = NUM_CLASSES) -> list[tuple[str, str]]:
    """Build every declaration (keyed by its key path) once; return all their problems together.

    This is the `model_check` that `stages.params.training.load_training` runs, so Keras-level problems are
    reported in one error with the file-level ones.
    """
    problems: list[tuple[str, str]] = []
    for path, spec in declared.items():
        problems += _assemble(spec, input_shape, num_classes, path)[1]
    keras.backend.clear_session()
    return problems


def layer_table(model: keras.Model) -> list[dict[str, Any]]:
    """What `model.summary()` shows: each layer's name, type, output shape and parameter count."""
    return [
        {"name": layer.name, "type": type(layer).__name__, "output_shape": str(tuple(layer.output.shape)), "params": int(layer.count_params())}
        for layer in model.layers
    ]
