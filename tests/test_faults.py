"""Faults and bad input, done for real: killed writers, tampered files, diverging training.

Each stage runs as `python -m stages <stage>` in a scratch directory holding its own params.yaml,
exactly as `dvc repro` runs it, and the test checks the exit status, the one-line message and
that nothing was written.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from stages.data.mnist import EXPECTED_SHAPES
from stages.data.npz import write_npz
from stages.files import read_npz
from stages.params.training import TrainSettings, load_training
from stages.training.history import metric_file
from tests.conftest import REPO, project_env, training_job


def stage(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    env = project_env()
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "stages", *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    return tmp_path


def prepare(scratch: Path, raw: Path) -> subprocess.CompletedProcess:
    return stage("prepare", "--raw", str(raw), "--train", "out/train.npz", "--test", "out/test.npz", cwd=scratch)


def test_tampered_raw_file_is_rejected_and_nothing_is_written(scratch: Path, raw_mnist: Path) -> None:
    arrays = read_npz(raw_mnist / "mnist.npz")
    arrays["x_test"] = arrays["x_test"].copy()
    arrays["x_test"][0, 0, 0] ^= 1
    write_npz(scratch / "tampered.npz", arrays, compress=True)
    result = prepare(scratch, scratch / "tampered.npz")
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [result.stdout.strip()]
    assert result.stdout.startswith(f"error: {scratch / 'tampered.npz'}: x_test fails its SHA-256 check")
    assert not (scratch / "out").exists()


def test_truncated_raw_file_is_rejected(scratch: Path, raw_mnist: Path) -> None:
    data = (raw_mnist / "mnist.npz").read_bytes()
    (scratch / "truncated.npz").write_bytes(data[: len(data) // 2])
    result = prepare(scratch, scratch / "truncated.npz")
    assert result.returncode == 1
    assert result.stdout.startswith(f"error: {scratch / 'truncated.npz'}: cannot be read as .npz")
    assert "Traceback" not in result.stdout + result.stderr
    assert not (scratch / "out").exists()


def test_local_source_with_wrong_dtype_is_named(scratch: Path) -> None:
    arrays = {name: np.zeros(shape, dtype=np.float32 if name == "x_train" else np.uint8) for name, shape in EXPECTED_SHAPES.items()}
    write_npz(scratch / "mine.npz", arrays)
    params = (scratch / "params.yaml").read_text().replace("sources: [keras, pypi, local]", "sources: [local]")
    (scratch / "params.yaml").write_text(params.replace("local_file: null", f"local_file: {scratch / 'mine.npz'}"))
    result = stage("download", "--out", "raw/mnist.npz", "--provenance", "raw/provenance.json", cwd=scratch)
    assert result.returncode == 1
    assert "local: source 'local': x_train has dtype float32, expected uint8" in result.stdout
    assert not (scratch / "raw").exists()


def test_bad_params_are_reported_before_any_data_is_read(scratch: Path) -> None:
    """Every stage checks the whole params file before it starts (stages/__main__.py): a training stage stops on
    another model's typo too, with `check`'s own message, so `dvc repro` stops at its first stage."""
    params = (scratch / "params.yaml").read_text()
    params = params.replace("epochs: 20", "epochs: 0").replace("name: SGD", "name: SDG").replace("name: Adam", "name: Adamm", 1)
    (scratch / "params.yaml").write_text(params)
    # No data exists here at all: the errors must come from the params alone.
    result = stage("train", "model1", "--data", "missing", "--model", "m.keras", "--log", "log", "--record", "run.json", cwd=scratch)
    assert result.returncode == 1
    assert result.stdout.startswith("error: params.yaml: 3 problems:\n")
    assert "train.epochs: Input should be greater than or equal to 1, got 0" in result.stdout
    assert "models.model1.optimizer.name: unknown Keras optimizer 'Adamm'; did you mean 'Adam'?" in result.stdout
    assert "models.model3.optimizer.name: unknown Keras optimizer 'SDG'; did you mean 'SGD'?" in result.stdout
    assert result.stdout.rstrip().endswith("error: stopped before this stage ran: fix params.yaml (python -m stages check lists every problem)")
    assert sorted(path.name for path in scratch.iterdir()) == ["params.yaml"]
    check = stage("check", cwd=scratch)
    assert check.returncode == 1 and check.stdout.strip() in result.stdout


def test_a_passed_check_is_not_run_again_until_the_file_changes(
    scratch: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp: a stage after the first pays a hash, not a second check; any edit to the file checks again."""
    from stages.__main__ import check_stamp

    cache = tmp_path_factory.mktemp("cache")
    env = {**project_env(), "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(cache)}

    def variant() -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "stages", "variant", "model2_adam", "--out", "v.json"]
        return subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=300)

    assert variant().returncode == 0
    stamps = list((cache / "mnist-cnn-dvc" / "params-checked").iterdir())
    assert len(stamps) == 1
    # What the stamp is named by: the same name here, another after an edit (a comment is an edit too).
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert check_stamp(scratch / "params.yaml") == stamps[0]
    (scratch / "params.yaml").write_text((scratch / "params.yaml").read_text().replace("name: SGD", "name: SDG"))
    assert check_stamp(scratch / "params.yaml") != stamps[0]
    result = variant()
    assert result.returncode == 1 and "models.model3.optimizer.name: unknown Keras optimizer 'SDG'" in result.stdout
    assert len(list((cache / "mnist-cnn-dvc" / "params-checked").iterdir())) == 1  # a failed check leaves no stamp


def test_a_writer_killed_mid_write_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "train.npz"
    write_npz(target, {"x": np.zeros(3)})
    before = target.read_bytes()
    code = (
        "import numpy as np, sys\n"
        "from stages.data.npz import write_npz\n"
        "print('writing', flush=True)\n"
        "write_npz(sys.argv[1], {'x': np.ones((400, 1000, 1000), dtype=np.float32)})\n"
    )
    env = project_env()
    env["PYTHONPATH"] = str(REPO)
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], env=env, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 60
    while not any(path.name.startswith(".train.") for path in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == before
    np.testing.assert_array_equal(read_npz(target)["x"], np.zeros(3))


def test_diverging_training_stops_with_a_message_and_keeps_its_history(tmp_path: Path) -> None:
    from stages.training.fit import TrainingDiverged, fit

    params = load_training(REPO / "params.yaml")
    spec = params.spec("model1")
    spec = dataclasses.replace(spec, optimizer=dataclasses.replace(spec.optimizer, class_name="SGD", arguments={"learning_rate": 1.0e10}))
    rng = np.random.default_rng(0)
    data = {"x": rng.random((280, 28, 28, 1), dtype=np.float32), "y": rng.integers(0, 10, 280)}
    with pytest.raises(TrainingDiverged, match=r"model1: the training loss became NaN at epoch 1;"):
        fit(training_job(spec, TrainSettings(epochs=3, batch_size=140, seed=0), tmp_path / "log"), data, data)
    assert (tmp_path / "log" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()[1].endswith("nan")


def test_a_model_file_with_python_code_is_refused(scratch: Path) -> None:
    """A `.keras` file carrying a Lambda layer's Python function is not loaded (Keras safe mode)."""
    layers = [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda images: images * 2), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(scratch / "model1.keras")
    history = scratch / "log"
    for split in ("train", "eval"):
        for metric in ("loss", "accuracy"):
            path = metric_file(history, split, metric)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"step\t{metric}\n0\t0.5\n")
    result = stage("plot", "model1", "--model", "model1.keras", "--log", "log", "--out", "figures", cwd=scratch)
    assert result.returncode == 1
    assert result.stdout.startswith("error: model1.keras: not loaded (")
    assert "Lambda" in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert not (scratch / "figures").exists()
