"""Atomic file writes and safe reads shared by every stage.

Every file our code writes goes to a temporary file beside its destination and is moved into
place with `os.replace`, so a stage killed mid-write leaves the previous complete file or none,
never a truncated one that a later stage would read. (DVCLive writes its own files its own way.) Arrays are stored in `.npz` archives written with a
fixed timestamp, so the same arrays always give the same bytes and DVC sees no change when a stage
reruns with the same result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# Zip entries carry a modification time; a fixed one makes archives byte-for-byte reproducible.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix) and move it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(handle)
    # mkstemp creates the file readable by its owner only; outputs get the usual rw-r--r--.
    os.chmod(temporary, 0o644)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path | str, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path | str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_npz(path: Path | str, arrays: Mapping[str, np.ndarray], compress: bool = False) -> None:
    """Write arrays as an `.npz` archive that `np.load` reads, reproducibly and atomically."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w", compression=compression, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_TIME)
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def read_npz(path: Path | str) -> dict[str, np.ndarray]:
    """Read every array of an `.npz` archive; pickled objects are refused.

    A truncated or corrupt archive raises `ValueError`, whatever layer of zip or zlib noticed it.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ValueError(f"not a valid .npz archive: {error}") from error


def sha256_file(path: Path | str) -> str:
    """SHA-256 of a file's bytes, read in blocks (`hashlib.file_digest`)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
