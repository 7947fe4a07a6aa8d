"""Resume an interrupted training run where it stopped, and never from a backup of another run.

After every finished epoch the train stage saves, under `checkpoints/<model>/`:

- `epoch-NNN.weights.h5`: the model's weights and the optimizer's state (Keras `save_weights`);
- `state.json`: the key of the run, the epochs done, each epoch's logs and time, and the state of
  the layers' random seed generators (dropout), which `save_weights` leaves out.

`state.json` is written last and names its weights file, and both are written atomically, so a
kill at any moment leaves a consistent backup of the last finished epoch. DVC deletes a stage's
outputs before it reruns the stage, so the backup lives outside them, and the epochs' logs are kept
in it to be replayed into DVCLive. The key is a SHA-256 over everything the run depends on: the
model's declaration, the `train` and `numerics` params, the bytes of every file `dvc.yaml` declares as the stage's
deps (the prepared data and the training code) and the Keras and TensorFlow versions. Reading the
deps from `dvc.yaml` keeps one list: the one DVC itself uses to decide that the stage must rerun. A backup whose key differs is deleted, never loaded; one that
cannot be read raises `UnusableBackup`, and the train stage deletes it and starts afresh.

Why not `keras.callbacks.BackupAndRestore`: it keys nothing (a backup of other params or code
would be loaded), leaves out the dropout layers' seed generator states (Keras 3.15's weights files
do not store them) and keeps no per-epoch logs to replay into DVCLive; wrapping it to add all three
would not remove code from this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import keras
import tensorflow as tf
from ruamel.yaml import YAML

from stages.files import read_json, sha256_file, write_json
from stages.params.numerics import Numerics
from stages.params.training import ModelSpec, TrainSettings

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
PIPELINE_FILE = Path("dvc.yaml")


class UnusableBackup(Exception):
    """A backup that exists but cannot be loaded (a corrupt weights file, a different model)."""


def declared_deps(stage: str, pipeline: Path | str = PIPELINE_FILE) -> list[Path]:
    """The files `dvc.yaml` lists as deps of `stage` (a plain stage, or a `foreach`/`matrix` template).

    Entries that name a template variable (`models/${key}.keras`) are left out: the training stages
    have none, and what they stand for is in the key through the model's declaration.
    """
    document = YAML(typ="safe", pure=True).load(Path(pipeline).read_text(encoding="utf-8"))
    try:
        definition = document["stages"][stage]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{pipeline}: no stage {stage!r}") from error
    deps = definition.get("do", definition).get("deps", [])
    return [Path(dep) for dep in deps if isinstance(dep, str) and "${" not in dep]


def run_key(spec: ModelSpec, settings: TrainSettings, numerics: Numerics, dep_files: Iterable[Path]) -> str:
    """SHA-256 of what a training run's result depends on: its declaration, settings, numerics, deps and versions."""
    description = {
        "model": dataclasses.asdict(spec),
        "train": dataclasses.asdict(settings),
        "numerics": numerics.model_dump(),
        "deps": {str(path): sha256_file(path) for path in sorted(dep_files)},
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


def _rng_variables(model: keras.Model) -> list[keras.Variable]:
    """The model's variables that are not weights, in layer order: its layers' seed generator states."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


@dataclasses.dataclass
class Restored:
    epochs_done: int
    history: list[dict[str, float]]
    epoch_seconds: list[float]


class Backup:
    """The backup of one model's training run in `directory`, valid only for `key`."""

    def __init__(self, directory: Path | str, key: str) -> None:
        self.directory = Path(directory)
        self.key = key

    def restore(self, model: keras.Model) -> Restored | None:
        """Load the last finished epoch into `model` (compiled, unfitted); None if there is nothing to resume."""
        state_path = self.directory / STATE_FILE
        if not state_path.exists():
            self.delete()
            return None
        try:
            state = read_json(state_path)
        except (OSError, ValueError) as error:
            logger.warning("%s: unreadable backup (%s); starting from epoch 1", self.directory, error)
            self.delete()
            return None
        if state.get("key") != self.key:
            logger.info("%s: backup made with other params, data or code; deleted, starting from epoch 1", self.directory)
            self.delete()
            return None
        weights = self.directory / str(state.get("weights"))
        try:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(weights)
            variables = _rng_variables(model)
            if len(variables) != len(state["rng"]):
                raise ValueError(f"{len(state['rng'])} seed generator states for a model with {len(variables)}")
            for variable, value in zip(variables, state["rng"], strict=True):
                variable.assign(value)
            return Restored(int(state["epochs_done"]), list(state["history"]), list(state["epoch_seconds"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            reason = " ".join(str(error).split())[:200]
            raise UnusableBackup(f"{weights}: unreadable backup ({type(error).__name__}: {reason})") from error

    def save(self, model: keras.Model, epochs_done: int, history: list[dict[str, float]], epoch_seconds: list[float]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        weights_name = f"epoch-{epochs_done:03d}.weights.h5"
        # Keras insists on the `.weights.h5` suffix, so the partial file gets a prefix instead.
        partial = self.directory / f"partial-{weights_name}"
        model.save_weights(partial)
        partial.replace(self.directory / weights_name)
        state = {
            "key": self.key,
            "epochs_done": epochs_done,
            "weights": weights_name,
            "history": history,
            "epoch_seconds": epoch_seconds,
            "rng": [variable.numpy().tolist() for variable in _rng_variables(model)],
        }
        write_json(self.directory / STATE_FILE, state)
        for stale in self.directory.glob("*.weights.h5"):
            if stale.name != weights_name:
                stale.unlink()

    def delete(self) -> None:
        """Remove the backup's own files, never anything else, and the directories that leaves empty."""
        if not self.directory.is_dir():
            return
        own = [self.directory / STATE_FILE, *self.directory.glob("*.weights.h5"), *self.directory.glob(f".{Path(STATE_FILE).stem}.*.tmp.json")]
        for path in own:
            path.unlink(missing_ok=True)
        for directory in (self.directory, self.directory.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()
