"""The evaluate stage's local-minimum check (`stages/training/landscape.py`) on a model whose minimum is
known: a linear regression, whose least-squares weights are the one minimum of its mean squared error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stages.reporting.claims import Landscape, local_minimum, read_landscape
from stages.reporting.power import NOT_SUPPORTED, SUPPORTED


@pytest.fixture(scope="module")
def regression() -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3)).astype("float32")
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3 + rng.normal(0, 0.1, 256)).astype("float32")[:, None]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    design = np.hstack([x, np.ones((256, 1))]).astype("float64")
    solution = np.linalg.lstsq(design, y.astype("float64"), rcond=None)[0]
    return model, x, y, solution


def set_weights(model, solution: np.ndarray, offset: float = 0.0) -> None:
    model.layers[0].set_weights([(solution[:3] + offset).astype("float32"), (solution[3] + offset).astype("float32")])


def test_at_the_least_squares_weights_no_step_lowers_the_loss(regression) -> None:
    from stages.training.landscape import loss_landscape

    model, x, y, solution = regression
    set_weights(model, solution)
    found = loss_landscape(model, x, y, batch_size=64)
    residual = np.hstack([x, np.ones((256, 1))]) @ solution - y
    assert found["images"] == 256 and found["loss"] == pytest.approx(float(np.mean(residual**2)), abs=1e-5)
    assert found["gradient_norm"] < 1e-4  # float32 rounding of an exact zero
    landscape = read_landscape(found)
    assert landscape.largest_fall[1] <= 1e-6 and local_minimum(landscape, 1e-5) == SUPPORTED


def test_away_from_it_the_loss_falls_along_the_negative_gradient_and_the_weights_come_back(regression) -> None:
    from stages.training.landscape import loss_landscape

    model, x, y, solution = regression
    set_weights(model, solution, offset=0.5)
    before = [weight.copy() for weight in model.layers[0].get_weights()]
    found = loss_landscape(model, x, y, batch_size=64)
    # The gradient of the mean squared error, by hand: 2/n * X^T (X w - y), over the weights and the bias.
    design = np.hstack([x, np.ones((256, 1))]).astype("float64")
    weights = np.vstack([before[0], before[1][:, None]]).astype("float64")
    gradient = 2 / 256 * design.T @ (design @ weights - y)
    assert found["gradient_norm"] == pytest.approx(float(np.linalg.norm(gradient)), rel=1e-4)
    landscape = read_landscape(found)
    step, fall = landscape.largest_fall
    assert fall > 0.1 and step == 1.0 and local_minimum(landscape, 1e-5) == NOT_SUPPORTED
    after = model.layers[0].get_weights()
    assert all(np.array_equal(first, second) for first, second in zip(before, after, strict=True))


def test_no_landscape_is_not_evaluated() -> None:
    assert local_minimum(None, 1e-5) == "not evaluated"
    flat = Landscape(10, 1.0, 0.0, ((0.1, 1.0), (1.0, 1.0)))
    assert flat.largest_fall == (0.1, 0.0) and not math.isnan(flat.largest_fall[1])
