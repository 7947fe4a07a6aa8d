"""Load a trained model file the safe way, for the stages that read what `train` wrote.

Keras' safe mode refuses to deserialize Python code stored in a `.keras` file (a `Lambda` layer's
function), so a model file from elsewhere cannot run code when it is loaded. A refusal, or a file
that is not a Keras model, is a `StageError` that names the file.
"""

from __future__ import annotations

from pathlib import Path

import keras

from stages.errors import StageError


class UnsafeOrBrokenModel(StageError, ValueError):
    """A model file that Keras cannot or will not load in safe mode."""


def load_trained_model(path: Path | str) -> keras.Model:
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, OSError) as error:
        reason = " ".join(str(error).split())
        raise UnsafeOrBrokenModel(f"{path}: not loaded ({reason[:300]})") from error
