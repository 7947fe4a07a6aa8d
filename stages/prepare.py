"""Prepare stage: the notebook's normalisation, cached as `.npz` under `data/prepared/`.

Run: `python -m stages prepare --raw data/raw/mnist.npz --train data/prepared/train.npz --test data/prepared/test.npz`.
Images become float32 in [0, 1] with shape (N, 28, 28, 1); labels stay integers (sparse
cross-entropy on integer labels is the notebook's categorical cross-entropy on one-hot labels).
`params.yaml: prepare.train_size / test_size` keep the first N images, for quick runs on a slice.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from stages.data.mnist import DataError, check_arrays
from stages.data.npz import write_npz
from stages.files import read_npz
from stages.params.base import load
from stages.params.data import DataParams

logger = logging.getLogger(__name__)


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) to float32 (N, 28, 28, 1) in [0, 1], as the notebook's `/= 255`."""
    return (images.astype(np.float32) / np.float32(255.0))[..., np.newaxis]


def take(images: np.ndarray, labels: np.ndarray, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `size` examples (all when `size` is None)."""
    if size is None:
        return images, labels
    if size > len(labels):
        raise ValueError(f"asked for {size} examples but only {len(labels)} exist")
    return images[:size], labels[:size]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages prepare")
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    args = parser.parse_args(argv)

    params = load(DataParams).prepare
    try:
        arrays = read_npz(args.raw)
    except (OSError, ValueError) as error:
        raise DataError(f"{args.raw}: cannot be read as .npz ({error})") from error
    check_arrays(arrays, str(args.raw))
    for split, images, labels, size, key in (
        ("train", arrays["x_train"], arrays["y_train"], params.train_size, "prepare.train_size"),
        ("test", arrays["x_test"], arrays["y_test"], params.test_size, "prepare.test_size"),
    ):
        try:
            images, labels = take(images, labels, size)
        except ValueError as error:
            raise DataError(f"params.yaml: {key}: {error}") from error
        destination = args.train if split == "train" else args.test
        write_npz(destination, {"x": normalize(images), "y": labels.astype(np.int64)})
        logger.info("%s: %d images -> %s", split, len(labels), destination)
