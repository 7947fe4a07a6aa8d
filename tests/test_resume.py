"""Interrupted training resumes, and only from a backup of the same run; runs are deterministic.

The end-to-end tests work in fresh clones of a project with the slice prepared (conftest's
`prepared_slice`) and train Model 2 for six epochs with the real `dvc repro train@model2`. One
clone runs it twice uninterrupted (the determinism check); another has its `dvc repro` process group
killed with SIGKILL after an epoch has been backed up, and the next `dvc repro` must resume there
and end with the same history.
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
import yaml

from stages.files import read_json
from stages.params.training import TrainSettings, load_training
from stages.training.backup import Backup, run_key
from stages.training.fit import EpochLog
from stages.training.history import FIT_SUMMARY, read_history
from tests.conftest import DATA, NUMERICS, REPO, clone_project, dvc, edit_params, project_env, ran_stages, training_job

EPOCHS = 6
STATE = Path("checkpoints/model2/state.json")


RECORD = Path("reports/runs/train/model2.json")


def trained(project: Path) -> tuple[dict[str, list[float]], dict]:
    return read_history(project / "reports/training/model2"), read_json(project / "reports/training/model2" / FIT_SUMMARY)


def lock_hashes(project: Path) -> dict[tuple[str, str], str]:
    """(stage, path) -> MD5 of every output and dependency recorded in dvc.lock."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {(stage, entry["path"]): entry["md5"] for stage, body in lock["stages"].items() for kind in ("deps", "outs") for entry in body.get(kind, [])}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, prepared_slice: Path) -> tuple[Path, dict[str, list[float]]]:
    project = clone_project(prepared_slice, tmp_path_factory.mktemp("resume") / "uninterrupted", *DATA)
    edit_params(project, train={"epochs": EPOCHS})
    dvc("repro", "train@model2", cwd=project)
    history, summary = trained(project)
    assert read_json(project / RECORD)["resumed_after_epoch"] == 0 and len(history["loss"]) == EPOCHS == summary["epochs"]
    assert not (project / "checkpoints").exists(), "a finished run deletes its backup"
    return project, history


def test_same_inputs_same_bytes_and_only_the_run_record_changes_in_the_lock(uninterrupted: tuple[Path, dict[str, list[float]]]) -> None:
    """Training the same slice twice gives a byte-identical model file, and dvc.lock differs only in
    the run record (timings); DVC then sees the model unchanged and skips the stages after it."""
    project, first = uninterrupted
    dvc("repro", "-q", "evaluate@model2", "plot@model2", cwd=project)
    model_before = (project / "models/model2.keras").read_bytes()
    lock_before = lock_hashes(project)
    dvc("repro", "-f", "train@model2", cwd=project)
    second, _ = trained(project)
    assert second == first
    assert (project / "models/model2.keras").read_bytes() == model_before
    lock_after = lock_hashes(project)
    changed = {key for key in lock_before.keys() | lock_after.keys() if lock_before.get(key) != lock_after.get(key)}
    assert changed == {("train@model2", RECORD.as_posix())}
    result = dvc("repro", "evaluate@model2", "plot@model2", cwd=project)
    assert {"evaluate@model2", "plot@model2"}.isdisjoint(ran_stages(result.stdout)), result.stdout


def test_a_killed_training_stage_resumes_after_its_last_epoch(tmp_path: Path, prepared_slice: Path, uninterrupted: tuple[Path, dict]) -> None:
    _, expected = uninterrupted
    project = clone_project(prepared_slice, tmp_path / "killed", *DATA)
    edit_params(project, train={"epochs": EPOCHS})
    command = [str(Path(sys.executable).parent / "dvc"), "repro", "train@model2"]
    process = subprocess.Popen(command, cwd=project, env=project_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (project / STATE).exists():
        assert process.poll() is None, "training ended before any epoch was backed up"
        assert time.monotonic() < deadline, "no backup after 300 s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = read_json(project / STATE)["epochs_done"]
    assert 1 <= done < EPOCHS
    assert not (project / "models/model2.keras").exists()

    result = dvc("repro", "train@model2", cwd=project)
    assert f"model2: resuming after epoch {done} of {EPOCHS}" in result.stdout + result.stderr
    history, _ = trained(project)
    record = read_json(project / RECORD)
    assert record["resumed_after_epoch"] == done
    assert len(record["epoch_seconds"]) == EPOCHS
    assert history == expected
    resumed_weights = keras.models.load_model(project / "models/model2.keras", safe_mode=True).get_weights()
    expected_weights = keras.models.load_model(uninterrupted[0] / "models/model2.keras", safe_mode=True).get_weights()
    for resumed, uninterrupted_weights in zip(resumed_weights, expected_weights, strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted_weights)
    assert (project / "models/model2.keras").read_bytes() == (uninterrupted[0] / "models/model2.keras").read_bytes()
    assert not (project / "checkpoints").exists()
    assert "train@model2" not in ran_stages(dvc("repro", "train@model2", cwd=project).stdout)


# Unit tests of the backup itself, on a tiny model in-process.


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    layers = [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.5), keras.layers.Dense(3, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_a_backup_restores_weights_optimizer_and_dropout_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 4), dtype=np.float32), rng.integers(0, 3, 64)
    model = tiny_model()
    epoch_log = EpochLog("tiny", 2, len(y), Backup(tmp_path, "k"))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False, callbacks=[epoch_log])
    assert len(epoch_log.history) == 2 and all(np.isfinite(entry["loss"]) for entry in epoch_log.history)

    fresh = tiny_model()
    restored = Backup(tmp_path, "k").restore(fresh)
    assert restored is not None and restored.epochs_done == 2 and len(restored.history) == 2
    assert int(fresh.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 8
    for original, loaded in zip(model.variables, fresh.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(original), np.asarray(loaded), err_msg=original.path)
    # One more epoch from the restored copy equals one more epoch of the original.
    model.fit(x, y, epochs=3, initial_epoch=2, batch_size=16, verbose=0, shuffle=False)
    fresh.fit(x, y, epochs=3, initial_epoch=2, batch_size=16, verbose=0, shuffle=False)
    for original, loaded in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(original, loaded)


def test_a_backup_with_another_key_is_deleted_not_loaded(tmp_path: Path) -> None:
    model = tiny_model()
    Backup(tmp_path / "model", "old").save(model, 1, [{"loss": 1.0}], [1.0])
    assert (tmp_path / "model" / "state.json").exists()
    assert Backup(tmp_path / "model", "new").restore(tiny_model()) is None
    assert not (tmp_path / "model").exists()


def test_deleting_a_backup_leaves_other_files_alone(tmp_path: Path) -> None:
    directory = tmp_path / "checkpoints" / "model"
    Backup(directory, "old").save(tiny_model(), 1, [{"loss": 1.0}], [1.0])
    (directory / "notes.txt").write_text("mine")
    assert Backup(directory, "new").restore(tiny_model()) is None
    assert sorted(path.name for path in directory.iterdir()) == ["notes.txt"]
    Backup(directory, "new").delete()
    assert (directory / "notes.txt").read_text() == "mine"


def test_the_key_changes_with_params_data_and_code(tmp_path: Path) -> None:
    spec = load_training(REPO / "params.yaml").spec("model2")
    settings = TrainSettings(epochs=20, batch_size=140, seed=0)
    data, code = tmp_path / "train.npz", tmp_path / "train.py"
    data.write_bytes(b"data")
    code.write_text("code")
    key = run_key(spec, settings, NUMERICS, [data, code])
    assert run_key(spec, settings, NUMERICS, [code, data]) == key
    changed = dataclasses.replace(spec, optimizer=dataclasses.replace(spec.optimizer, arguments={**spec.optimizer.arguments, "learning_rate": 0.5}))
    assert run_key(changed, settings, NUMERICS, [data, code]) != key
    assert run_key(dataclasses.replace(spec, precision="mixed_bfloat16"), settings, NUMERICS, [data, code]) != key
    assert run_key(spec, dataclasses.replace(settings, seed=1), NUMERICS, [data, code]) != key
    assert run_key(spec, settings, NUMERICS.model_copy(update={"intra_op_threads": 1}), [data, code]) != key
    data.write_bytes(b"datA")
    assert run_key(spec, settings, NUMERICS, [data, code]) != key
    data.write_bytes(b"data")
    code.write_text("code ")
    assert run_key(spec, settings, NUMERICS, [data, code]) != key


def test_a_run_killed_after_its_last_epoch_only_saves(tmp_path: Path) -> None:
    """All epochs backed up but the model not saved yet: the rerun trains nothing and returns that model."""
    from stages.training.fit import fit

    spec = load_training(REPO / "params.yaml").spec("model2")
    settings = TrainSettings(epochs=2, batch_size=140, seed=0)
    rng = np.random.default_rng(0)
    data = {"x": rng.random((280, 28, 28, 1), dtype=np.float32), "y": rng.integers(0, 10, 280)}
    first, _, _ = fit(training_job(spec, settings, tmp_path / "log"), data, data, Backup(tmp_path / "backup", "k"))
    assert read_json(tmp_path / "backup" / "state.json")["epochs_done"] == 2
    again, summary, timing = fit(training_job(spec, settings, tmp_path / "log-again"), data, data, Backup(tmp_path / "backup", "k"))
    assert timing["resumed_after_epoch"] == 2 and summary["epochs"] == 2
    assert read_history(tmp_path / "log-again") == read_history(tmp_path / "log")
    for trained_weights, restored_weights in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(trained_weights, restored_weights)


def test_a_corrupt_backup_gives_one_line_and_a_fresh_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from stages.training.fit import fit

    spec = load_training(REPO / "params.yaml").spec("model2")
    settings = TrainSettings(epochs=2, batch_size=140, seed=0)
    rng = np.random.default_rng(0)
    data = {"x": rng.random((280, 28, 28, 1), dtype=np.float32), "y": rng.integers(0, 10, 280)}
    first, _, _ = fit(training_job(spec, settings, tmp_path / "log"), data, data, Backup(tmp_path / "backup", "k"))
    weights = tmp_path / "backup" / read_json(tmp_path / "backup" / "state.json")["weights"]
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, as by a full disk
    with caplog.at_level("WARNING"):
        again, summary, timing = fit(training_job(spec, settings, tmp_path / "log-again"), data, data, Backup(tmp_path / "backup", "k"))
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage() and warnings[0].exc_info is None
    assert warnings[0].getMessage().startswith(f"{weights}: unreadable backup (") and "starting from epoch 1" in warnings[0].getMessage()
    assert timing["resumed_after_epoch"] == 0 and summary["epochs"] == 2
    for fresh_weights, again_weights in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(fresh_weights, again_weights)


def test_each_epoch_of_batches_is_a_permutation_fixed_by_seed_and_epoch() -> None:
    from stages.training.fit import training_batches

    count, batch = 50, 8
    x, y = np.arange(count, dtype=np.float32), np.arange(count)

    def orders(seed: int, first_epoch: int, epochs: int) -> list[list[int]]:
        flat = [int(label) for _, labels in training_batches(x, y, batch, seed, first_epoch, epochs) for label in labels.numpy()]
        return [flat[start : start + count] for start in range(0, len(flat), count)]

    epochs = orders(seed=0, first_epoch=0, epochs=3)
    assert len(epochs) == 3 and all(sorted(order) == list(range(count)) for order in epochs)
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(count))
    assert orders(seed=0, first_epoch=2, epochs=3) == [epochs[2]], "epoch 3's order does not depend on the epochs before it"
    assert orders(seed=0, first_epoch=0, epochs=3) == epochs
    assert orders(seed=1, first_epoch=0, epochs=1)[0] != epochs[0]
