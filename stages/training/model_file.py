"""The `.keras` model file: written so that the same model gives the same bytes, read the safe way.

Keras writes a zip of `metadata.json`, `config.json` and `model.weights.h5`; the metadata carries
the time of saving (`date_saved`), every entry the zip time of the moment it was written, and the
config numbers the objects that layers share (the dtype policy) by their Python `id()`, which
differs from process to process. Each changes a file's hash although nothing in the model changed,
which makes DVC rerun every stage after a retrain that reproduced the same weights. `save_model`
rewrites the archive with a fixed entry time, without `date_saved`, and with the shared objects
numbered 1, 2, ... in the order they first appear (the sharing itself is kept); Keras loads it as
it loads its own.

Keras' safe mode refuses to deserialize Python code stored in a `.keras` file (a `Lambda` layer's
function), so a model file from elsewhere cannot run code when it is loaded. A refusal, or a file
that is not a Keras model, is a `StageError` that names the file.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from pathlib import Path

import keras

from stages.errors import StageError
from stages.files import FIXED_ZIP_TIME, atomic_path

METADATA = "metadata.json"
CONFIG = "config.json"
_SHARED_ID = re.compile(rb'"shared_object_id": (\d+)')


def _numbered_shared_objects(config: bytes) -> bytes:
    """Replace each `shared_object_id` (a Python id()) by its order of first appearance."""
    numbers: dict[bytes, int] = {}

    def renumber(match: re.Match[bytes]) -> bytes:
        number = numbers.setdefault(match.group(1), len(numbers) + 1)
        return b'"shared_object_id": ' + str(number).encode()

    return _SHARED_ID.sub(renumber, config)


class UnsafeOrBrokenModel(StageError, ValueError):
    """A model file that Keras cannot or will not load in safe mode."""


def _reproducible_copy(source: Path, destination: Path) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(destination, "w") as copy:
        for entry in original.infolist():
            data = original.read(entry)
            if entry.filename == METADATA:
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata, sort_keys=True).encode()
            elif entry.filename == CONFIG:
                data = _numbered_shared_objects(data)
            info = zipfile.ZipInfo(entry.filename, date_time=FIXED_ZIP_TIME)
            info.compress_type = entry.compress_type
            info.external_attr = 0o644 << 16
            copy.writestr(info, data)


def save_model(model: keras.Model, path: Path | str) -> None:
    """Save `model` to `path` (atomically), with bytes that depend only on the model."""
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent if path.parent.exists() else None, prefix=".keras-save-") as workdir:
        keras_file = Path(workdir) / "model.keras"
        model.save(keras_file)
        with atomic_path(path) as temporary:
            _reproducible_copy(keras_file, temporary)


def load_trained_model(path: Path | str) -> keras.Model:
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, OSError) as error:
        reason = " ".join(str(error).split())
        raise UnsafeOrBrokenModel(f"{path}: not loaded ({reason[:300]})") from error
