"""The builder: the notebook's parameter counts, and Keras-level mistakes named by key path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import pytest
import yaml

from stages.params.base import ParamsError, read_yaml
from stages.params.training import load_training, training_problems
from stages.training.builder import build_model, count_trainable, model_problems

REPO = Path(__file__).resolve().parents[1]

# From the notebook's model.summary() output (Keras 2.2): total and trainable parameters.
NOTEBOOK_COUNTS = {
    "model1": (3_314_186, 3_314_122),
    "model2": (1_199_882, 1_199_882),
    "model3": (1_199_882, 1_199_882),
    "model4": (1_358_858, 1_357_642),
}


@pytest.fixture(scope="module")
def params():
    return load_training(REPO / "params.yaml")


@pytest.mark.parametrize("name", sorted(NOTEBOOK_COUNTS))
def test_builder_matches_notebook_parameter_counts(params, name: str) -> None:
    model = build_model(params.spec(name))
    assert (model.count_params(), count_trainable(model)) == NOTEBOOK_COUNTS[name]
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation is keras.activations.softmax


def test_optimizers_follow_the_declarations(params) -> None:
    model2 = build_model(params.spec("model2"))
    assert type(model2.optimizer).__name__ == "Adadelta"
    assert float(model2.optimizer.learning_rate) == pytest.approx(1.0)
    model3 = build_model(params.spec("model3"))
    assert type(model3.optimizer).__name__ == "SGD"
    assert float(model3.optimizer.learning_rate) == pytest.approx(0.01)


def broken(edit) -> dict[str, str]:
    raw = read_yaml((REPO / "params.yaml").read_text())
    edit(raw["models"])
    _, problems = training_problems(raw, model_problems)
    assert problems
    return dict(problems)


def test_unknown_layer_is_named_with_a_suggestion() -> None:
    problems = broken(lambda models: models["model2"]["layers"].__setitem__(2, {"MaxPool2d": {"pool_size": [2, 2]}}))
    assert list(problems) == ["models.model2.layers[2]"]
    assert "unknown Keras layer 'MaxPool2d'" in problems["models.model2.layers[2]"]
    assert "did you mean" in problems["models.model2.layers[2]"]


def test_unknown_argument_is_named() -> None:
    problems = broken(lambda models: models["model1"]["layers"][0]["Conv2D"].update(filterz=8))
    assert "models.model1.layers[0].Conv2D.filterz" in problems
    assert "did you mean 'filters'" in problems["models.model1.layers[0].Conv2D.filterz"]


def test_wrong_type_is_named() -> None:
    problems = broken(lambda models: models["model2"]["layers"][1]["Conv2D"].update(filters="64"))
    assert problems == {"models.model2.layers[1].Conv2D.filters": "expected an integer, got '64'"}


def test_bad_activation_value_is_named() -> None:
    problems = broken(lambda models: models["model4"]["layers"][0]["Conv2D"].update(activation="relux"))
    assert list(problems) == ["models.model4.layers[0].Conv2D.activation"]


def test_unknown_optimizer_and_argument() -> None:
    def edit(models: dict) -> None:
        models["model3"]["optimizer"]["name"] = "Adamm"
        models["model1"]["optimizer"]["learning_rte"] = 0.1

    problems = broken(edit)
    assert set(problems) == {"models.model3.optimizer.name", "models.model1.optimizer.learning_rte"}


def test_layers_that_shrink_the_image_below_one_pixel() -> None:
    def edit(models: dict) -> None:
        layers = models["model2"]["layers"]
        # 24x24 after the two convolutions: four more poolings give 1x1, the original fifth fails.
        for _ in range(4):
            layers.insert(2, {"MaxPooling2D": {"pool_size": [2, 2]}})

    problems = broken(edit)
    assert list(problems) == ["models.model2.layers[6]"]
    assert "cannot connect" in problems["models.model2.layers[6]"] or "below one pixel" in problems["models.model2.layers[6]"]


def test_output_must_have_one_score_per_class() -> None:
    problems = broken(lambda models: models["model1"]["layers"][-1]["Dense"].update(units=12))
    assert list(problems) == ["models.model1.layers[11]"]
    assert "(None, 12)" in problems["models.model1.layers[11]"]


def test_building_a_bf16_model_leaves_the_next_model_in_its_own_precision(params) -> None:
    """Keras' dtype policy is process-wide; building one model must not change the next one's."""
    before = keras.mixed_precision.global_policy().name
    bf16 = build_model(dataclasses.replace(params.spec("model1"), precision="mixed_bfloat16"))
    float32 = build_model(params.spec("model2"))
    again = build_model(dataclasses.replace(params.spec("model4"), precision="mixed_bfloat16"))
    assert {layer.compute_dtype for layer in bf16.layers} == {"bfloat16"}
    assert {layer.compute_dtype for layer in float32.layers} == {"float32"}
    assert {layer.variable_dtype for layer in float32.layers} == {"float32"}
    assert {layer.compute_dtype for layer in again.layers} == {"bfloat16"}
    assert keras.mixed_precision.global_policy().name == before


def test_file_and_keras_problems_come_in_one_error_naming_the_checked_file(tmp_path: Path) -> None:
    raw = read_yaml((REPO / "params.yaml").read_text())
    raw["train"]["epochs"] = 0
    raw["models"]["model2"]["optimizer"]["name"] = "Adadeltaa"
    raw["models"]["model3"]["layers"][0]["Conv2D"]["filter"] = 32
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ParamsError) as caught:
        load_training(other, model_check=model_problems)
    problems = dict(caught.value.problems)
    assert set(problems) == {"train.epochs", "models.model2.optimizer.name", "models.model3.layers[0].Conv2D.filter"}
    assert "did you mean 'Adadelta'" in problems["models.model2.optimizer.name"]
    assert str(caught.value).startswith(f"{other}: 3 problems:")
    assert "params.yaml" not in str(caught.value)
