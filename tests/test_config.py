"""Params loading: the default file parses, and every kind of mistake is named by its key path."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stages.config import ParamsError, load_params, parse_params, read_yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def raw() -> dict:
    return read_yaml((REPO / "params.yaml").read_text())


def problems_of(document: dict) -> dict[str, str]:
    with pytest.raises(ParamsError) as caught:
        parse_params(document)
    return dict(caught.value.problems)


def test_default_params_load() -> None:
    params = load_params(REPO / "params.yaml")
    assert list(params.models) == ["model1", "model2", "model3", "model4"]
    assert (params.train.epochs, params.train.batch_size) == (20, 140)
    assert params.prepare.train_size is None and params.prepare.test_size is None
    model2 = params.models["model2"]
    assert model2.optimizer.class_name == "Adadelta"
    assert model2.optimizer.arguments["learning_rate"] == 1.0
    assert all(layer.arguments.get("kernel_initializer") == "he_normal" for layer in params.models["model4"].layers if layer.class_name == "Conv2D")


def test_zero_epochs_is_named(raw: dict) -> None:
    raw["train"]["epochs"] = 0
    assert problems_of(raw) == {"train.epochs": "must be at least 1, got 0"}


def test_wrong_types_and_unknown_keys_are_all_reported_together(raw: dict) -> None:
    raw["train"]["batch_size"] = "140"
    raw["prepare"]["train_size"] = 0
    raw["train"]["epoch"] = 3
    raw["models"]["model3"]["optimiser"] = raw["models"]["model3"].pop("optimizer")
    problems = problems_of(raw)
    assert set(problems) == {"train.batch_size", "prepare.train_size", "train.epoch", "models.model3.optimiser", "models.model3.optimizer"}
    assert "expected an integer" in problems["train.batch_size"]
    assert "unknown key" in problems["train.epoch"]
    assert problems["models.model3.optimizer"] == "missing"


def test_layer_must_be_single_key_mapping(raw: dict) -> None:
    raw["models"]["model1"]["layers"][2] = "MaxPooling2D"
    assert list(problems_of(raw)) == ["models.model1.layers[2]"]


def test_unknown_download_source(raw: dict) -> None:
    raw["download"]["sources"] = ["pypi", "s3"]
    assert problems_of(raw) == {"download.sources[1]": "must be one of keras, pypi, local, got 's3'"}


def test_unknown_precision_and_nan_argument(raw: dict) -> None:
    raw["models"]["model4"]["precision"] = "float16"
    raw["models"]["model2"]["optimizer"]["learning_rate"] = float("nan")
    problems = problems_of(raw)
    assert "models.model4.precision" in problems
    assert problems["models.model2.optimizer.learning_rate"] == "must be a finite number, got nan"


def test_error_message_names_the_file_and_every_problem(tmp_path: Path, raw: dict) -> None:
    document = copy.deepcopy(raw)
    document["train"]["epochs"] = -1
    document["prepare"]["test_size"] = 1.5
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 2 problems:")
    assert "train.epochs: must be at least 1, got -1" in message
    assert "prepare.test_size: expected an integer or null, got float 1.5" in message


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train: [epochs: 3\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_exponent_numbers_are_numbers_as_in_dvc(tmp_path: Path) -> None:
    text = (REPO / "params.yaml").read_text().replace("learning_rate: 0.001", "learning_rate: 1e-4", 1)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_params(path).models["model1"].optimizer.arguments["learning_rate"] == 0.0001
    assert read_yaml("a: 1e-07\nb: 1.0e-07\nc: '1e-07'\nd: 1e5x") == {"a": 1e-07, "b": 1e-07, "c": "1e-07", "d": "1e5x"}


def test_a_learning_rate_of_zero_or_less_is_an_error(raw: dict) -> None:
    raw["models"]["model1"]["optimizer"]["learning_rate"] = 0
    raw["ablations"]["models"]["model2_adam"]["optimizer"]["learning_rate"] = -0.001
    assert problems_of(raw) == {
        "models.model1.optimizer.learning_rate": "must be greater than 0, got 0",
        "ablations.models.model2_adam.optimizer.learning_rate": "must be greater than 0, got -0.001",
    }


def test_replica_and_ablation_seeds_are_checked(raw: dict) -> None:
    raw["ablations"]["seeds"] = [0, 1, 2]
    raw["replicas"]["seeds"] = [0, 3, 3]
    problems = problems_of(raw)
    assert problems["replicas.seeds"] in ("seeds must differ; repeated: 3", "must not repeat the main run's seed train.seed = 0")
    assert problems["ablations.seeds"] == "must be train.seed and replicas.seeds, [0, 0, 3, 3]; got [0, 1, 2]"


def test_ablation_names_may_not_shadow_models(raw: dict) -> None:
    raw["ablations"]["models"]["model1"] = raw["ablations"]["models"].pop("model2_adam")
    assert problems_of(raw) == {"ablations.models.model1": "this name is already a model under `models`"}


def test_spec_finds_models_and_ablations(raw: dict) -> None:
    raw["replicas"]["seeds"] = [1, 2]
    raw["ablations"]["seeds"] = [2, 0, 1]
    params = parse_params(raw)
    assert params.replica_seeds == (1, 2) and params.ablations.seeds == (2, 0, 1)
    assert params.spec("model4").name == "model4"
    assert params.spec("model2_adam").optimizer.class_name == "Adam"
    with pytest.raises(ParamsError, match="no such model or ablation; declared: model1, model2, model3, model4, model4_glorot, model2_adam"):
        params.spec("model5")
