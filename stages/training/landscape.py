"""Is a trained model at a local minimum? Its loss gradient and the loss along the negative gradient.

The evaluate stage runs this on the model file (it is the one stage that has it), over the first
`images` training images in inference mode (dropout off, batch-norm moving statistics): the mean
training loss, the norm of its gradient over all trainable weights, and the loss after a step of
each given length along the unit negative gradient (the weights are put back afterwards). At a
local minimum the gradient is close to zero and no step lowers the loss; a loss that falls along
the negative gradient says the model stopped on a slope, not in a minimum. The report decides
what that means for the notebook's claim 3.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

STEPS = (0.001, 0.01, 0.1, 1.0)


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int):
    for start in range(0, len(y), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def _mean_loss(model: keras.Model, loss, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    total = 0.0
    for images, labels in _batches(x, y, batch_size):
        total += float(tf.reduce_sum(loss(labels, model(images, training=False))))
    return total / len(y)


def loss_landscape(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int, steps: tuple[float, ...] = STEPS) -> dict[str, Any]:
    """The mean loss on (x, y), its gradient's norm and the loss after each step along the negative gradient."""
    loss = keras.losses.get(model.loss)
    variables = model.trainable_variables
    gradient = [tf.zeros_like(variable) for variable in variables]
    total = 0.0
    for images, labels in _batches(x, y, batch_size):
        with tf.GradientTape() as tape:
            summed = tf.reduce_sum(loss(labels, model(images, training=False)))
        gradient = [accumulated + part for accumulated, part in zip(gradient, tape.gradient(summed, variables), strict=True)]
        total += float(summed)
    gradient = [part / len(y) for part in gradient]
    norm = float(tf.linalg.global_norm(gradient))
    start = [variable.numpy() for variable in variables]
    along = []
    for step in steps:
        for variable, value, part in zip(variables, start, gradient, strict=True):
            variable.assign(value - (step / norm) * part.numpy() if norm > 0 else value)
        along.append({"step": step, "loss": round(_mean_loss(model, loss, x, y, batch_size), 6)})
    for variable, value in zip(variables, start, strict=True):
        variable.assign(value)
    return {"images": int(len(y)), "loss": round(total / len(y), 6), "gradient_norm": float(f"{norm:.6g}"), "along_negative_gradient": along}
