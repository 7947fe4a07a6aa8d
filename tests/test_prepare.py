"""The notebook's normalisation and the slice."""

from __future__ import annotations

import numpy as np
import pytest

from stages.prepare import normalize, take


def test_normalize_matches_the_notebook() -> None:
    images = np.array([[[0, 255], [128, 1]]], dtype=np.uint8)
    result = normalize(images)
    assert result.dtype == np.float32
    assert result.shape == (1, 2, 2, 1)
    expected = images.astype("float32")
    expected /= 255
    np.testing.assert_array_equal(result[..., 0], expected)


def test_take_keeps_the_first_examples() -> None:
    images, labels = np.arange(10).reshape(5, 2), np.arange(5)
    kept_images, kept_labels = take(images, labels, 3)
    np.testing.assert_array_equal(kept_labels, [0, 1, 2])
    assert kept_images.shape == (3, 2)
    assert take(images, labels, None)[1] is labels


def test_take_more_than_exists_is_an_error() -> None:
    with pytest.raises(ValueError, match="asked for 6 examples but only 5 exist"):
        take(np.zeros((5, 2)), np.zeros(5), 6)
