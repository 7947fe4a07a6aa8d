"""Params by concern: the default file validates, and every kind of mistake is named by its key path."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from stages.check import document_problems
from stages.params.base import ParamsError, load, read_yaml
from stages.params.data import DataParams
from stages.params.report import load_report
from stages.params.training import load_model_run, load_training

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def raw() -> dict:
    return read_yaml((REPO / "params.yaml").read_text())


def problems(document: dict) -> dict[str, str]:
    """Every problem of a document, data, training and report alike: what `python -m stages check` runs, less Keras."""
    return dict(document_problems(document, model_check=None)[1])


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_default_params_load() -> None:
    training = load_training(REPO / "params.yaml")
    assert list(training.models) == ["model1", "model2", "model3", "model4"]
    assert (training.train.epochs, training.train.batch_size) == (20, 140)
    data = load(DataParams, REPO / "params.yaml")
    assert data.prepare.train_size is None and data.prepare.test_size is None
    model2 = training.spec("model2")
    assert model2.optimizer.class_name == "Adadelta" and model2.optimizer.arguments["learning_rate"] == 1.0
    assert all(layer.arguments.get("kernel_initializer") == "he_normal" for layer in training.spec("model4").layers if layer.class_name == "Conv2D")
    rules, _ = load_report(REPO / "params.yaml")
    assert rules.claims.best == "model4" and rules.sample_digits == 40


def test_an_ablation_is_its_base_with_one_change(raw: dict) -> None:
    training = load_training(REPO / "params.yaml")
    glorot, model4 = training.spec("model4_glorot"), training.spec("model4")
    assert len(glorot.layers) == len(model4.layers) == 22
    changed = [(a.class_name, a.arguments, b.arguments) for a, b in zip(glorot.layers, model4.layers, strict=True) if a != b]
    assert len(changed) == 8 and all(new == {**old, "kernel_initializer": "glorot_uniform"} for _, new, old in changed)
    assert (glorot.optimizer, glorot.precision, glorot.loss) == (model4.optimizer, model4.precision, model4.loss)
    adam, model2 = training.spec("model2_adam"), training.spec("model2")
    assert adam.layers == model2.layers and adam.precision == "float32" and adam.optimizer.class_name == "Adam"


def test_every_problem_at_once_by_key_path(raw: dict) -> None:
    raw["train"]["epochs"] = 0
    raw["train"]["batch_size"] = "140"
    raw["train"]["epoch"] = 3
    raw["prepare"]["test_size"] = 20000
    raw["models"]["model3"]["optimizer"]["learning_rate"] = -0.01
    raw["models"]["model4"]["precision"] = "float16"
    found = problems(raw)
    expected = {"train.epochs", "train.batch_size", "train.epoch", "prepare.test_size", "models.model3.optimizer.learning_rate", "models.model4.precision"}
    assert set(found) == expected
    assert found["train.epoch"] == "unknown key"
    assert "greater than or equal to 1" in found["train.epochs"] and "got 0" in found["train.epochs"]
    assert "valid integer" in found["train.batch_size"]
    assert "less than or equal to 10000" in found["prepare.test_size"]
    assert "greater than 0" in found["models.model3.optimizer.learning_rate"]


def test_the_error_names_the_file(tmp_path: Path, raw: dict) -> None:
    raw["train"]["epochs"] = -1
    raw["models"]["model2"]["layers"][0]["Conv2D"]["rate"] = float("nan")
    path = write(tmp_path, raw)
    with pytest.raises(ParamsError) as caught:
        load_training(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 2 problems:")
    assert "  train.epochs: " in message and "  models.model2.layers[0]: " in message and "must be a finite number" in message


def test_a_model_name_dvc_cannot_use_is_an_error(raw: dict) -> None:
    raw["models"]["model 5"] = copy.deepcopy(raw["models"]["model1"])
    raw["models"]["model@6"] = copy.deepcopy(raw["models"]["model1"])
    # Keras refuses '/' in a model's name with an exception: the schema's line must be all the user sees.
    raw["models"]["../evil"] = copy.deepcopy(raw["models"]["model1"])
    found = problems(raw)
    assert set(found) == {"models.model 5 (the name)", "models.model@6 (the name)", "models.../evil (the name)"}


def test_layer_must_be_single_key_mapping(raw: dict) -> None:
    raw["models"]["model1"]["layers"][2] = {"MaxPooling2D": {}, "Dropout": {}}
    assert list(problems(raw)) == ["models.model1.layers[2]"]


def test_unknown_download_source(raw: dict) -> None:
    raw["download"]["sources"] = ["pypi", "s3"]
    found = problems(raw)
    assert list(found) == ["download.sources[1]"] and "'keras', 'pypi' or 'local'" in found["download.sources[1]"]


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_training(path)


def test_exponent_numbers_are_numbers_as_in_dvc(tmp_path: Path, raw: dict) -> None:
    path = write(tmp_path, raw)
    path.write_text(path.read_text().replace("learning_rate: 0.01", "learning_rate: 1e-2"))
    assert load_training(path).spec("model3").optimizer.arguments["learning_rate"] == 0.01


def test_seeds_are_checked(raw: dict) -> None:
    raw["replicas"]["seeds"] = [0, 2, 2]
    raw["ablations"]["seeds"] = [0, 1]
    found = problems(raw)
    assert found["replicas.seeds"].startswith(("seeds must differ", "must not repeat"))
    assert "must be train.seed and replicas.seeds" in found["ablations.seeds"]


def test_an_ablation_must_name_a_base_and_change_exactly_one_thing(raw: dict) -> None:
    variants = raw["ablations"]["models"]
    two = copy.deepcopy(raw)
    two["ablations"]["models"]["model2_adam"]["precision"] = "mixed_bfloat16"
    assert "exactly one change" in problems(two)["ablations.models.model2_adam"]
    variants["model4_glorot"]["base"] = "model9"
    variants["same"] = {"base": "model2", "optimizer": copy.deepcopy(raw["models"]["model2"]["optimizer"])}
    variants["nothing_there"] = {"base": "model2", "layer_arguments": {"kernel_initializer": "he_normal"}}
    variants["model1"] = {"base": "model2", "loss": "categorical_crossentropy"}
    found = problems(raw)
    assert "no model 'model9'" in found["ablations.models.model4_glorot.base"]
    assert found["ablations.models.same"] == "the change leaves model2 as it is"
    assert "no layer of model2 declares kernel_initializer" in found["ablations.models.nothing_there.layer_arguments"]
    assert found["ablations.models.model1"] == "this name is already a model under `models`"


def test_a_renamed_model_fails_the_claims_check(raw: dict) -> None:
    raw["models"]["model4_he"] = raw["models"].pop("model4")
    raw["ablations"]["models"]["model4_glorot"]["base"] = "model4_he"
    found = problems(raw)
    assert list(found) == ["report.claims.faster_convergence.model", "report.claims.best"]
    assert "no model or ablation 'model4'" in found["report.claims.best"]


def test_unknown_report_rule_is_named(raw: dict) -> None:
    raw["report"]["overfit_ratio"] = 2.0
    assert problems(raw) == {"report.overfit_ratio": "unknown key"}


def test_a_bf16_model_the_pinned_numerics_cannot_run_is_a_params_problem(tmp_path: Path, raw: dict) -> None:
    """oneDNN on with its ISA capped at AVX2 has no bf16 convolution (TensorFlow would abort): the check
    and the training stage's own loading name the model's precision, before any data is read."""
    raw["models"]["model1"]["precision"] = "mixed_bfloat16"
    raw["ablations"]["models"]["model2_adam"] = {"base": "model2", "precision": "mixed_bfloat16"}
    found = problems(raw)
    assert set(found) == {"models.model1.precision", "ablations.models.model2_adam.precision"}
    assert found["models.model1.precision"].startswith("mixed_bfloat16 cannot run with numerics.onednn true and numerics.onednn_isa AVX2")
    with pytest.raises(ParamsError) as caught:
        load_model_run("model1", write(tmp_path, raw))
    assert [path for path, _ in caught.value.problems] == ["models.model1.precision"]
    raw["numerics"]["onednn_isa"] = "AVX512_CORE"  # oneDNN emulates bf16 there: allowed, with the warning at run time
    assert problems(raw) == {}
    assert load_model_run("model1", write(tmp_path, raw)).spec.precision == "mixed_bfloat16"


def test_the_numerics_section_is_required_and_checked(raw: dict) -> None:
    del raw["numerics"]
    assert problems(raw) == {"numerics": "missing"}
    raw["numerics"] = {"intra_op_threads": 0, "inter_op_threads": 2, "onednn": "yes", "onednn_isa": "AVX3"}
    assert set(problems(raw)) == {"numerics.intra_op_threads", "numerics.onednn", "numerics.onednn_isa"}
