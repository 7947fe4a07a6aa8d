"""The overfitting sign, robust to one noisy epoch: the trend after the minimum, not one epoch.

The rule, with its numbers in `params.yaml: report`: smooth the validation loss with a moving
average over `overfit_window` epochs and find the window where it is lowest; from that window's
first epoch to the last, fit a least-squares line to the validation loss and to the training loss.
A run shows the sign when the validation loss rises (one-sided t-test of the slope below
`overfit_significance`) while the training loss falls (negative slope). Comparing the last epoch with
the minimum of all twenty, the rule this replaces, fires on noise alone.

Beside each verdict, its false-alarm rate on the run's own noise: the run's curve with its tail made
flat (from the lowest window on, the window's mean plus the residuals of the run's own tail line,
resampled in random order), `simulations` times, and the share of those on which the whole rule,
minimum search included, fires. SciPy's `linregress` fits the real tail; the simulated ones use the
same least-squares formulas vectorised. The same simulated curves calibrate the run's p: the share
of them (the run itself counted in) whose rule gives a p at most the run's. Across seeds these
calibrated p-values are combined (`stats.combine_p`), not counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Trend:
    """A least-squares line through the last epochs of one curve."""

    first_epoch: int  # from 1
    slope: float  # per epoch
    low: float  # 95% interval of the slope
    high: float
    p_rising: float  # one-sided p of "slope > 0"
    residuals: tuple[float, ...]


def trend(values: Sequence[float], first_epoch: int) -> Trend:
    """The line through `values` from `first_epoch` (from 1) to the last epoch."""
    tail = np.asarray(values[first_epoch - 1 :], dtype=float)
    if len(tail) < 3:
        return Trend(first_epoch, math.nan, math.nan, math.nan, math.nan, ())
    epochs = np.arange(first_epoch, first_epoch + len(tail), dtype=float)
    fit = stats.linregress(epochs, tail)
    freedom = len(tail) - 2
    half = stats.t.ppf(0.975, freedom) * fit.stderr
    p_rising = float(stats.t.sf(fit.slope / fit.stderr, freedom)) if fit.stderr > 0 else (0.0 if fit.slope > 0 else 1.0)
    residuals = tail - (fit.intercept + fit.slope * epochs)
    return Trend(first_epoch, float(fit.slope), float(fit.slope - half), float(fit.slope + half), p_rising, tuple(float(value) for value in residuals))


def lowest_window(values: np.ndarray, window: int) -> np.ndarray:
    """Row by row: the first epoch (from 1) of the `window`-epoch run of least mean."""
    width = min(window, values.shape[1])
    sums = np.cumsum(np.pad(values, ((0, 0), (1, 0))), axis=1)
    means = (sums[:, width:] - sums[:, :-width]) / width
    return np.argmin(means, axis=1) + 1


def _rising_p(series: np.ndarray) -> np.ndarray:
    """One-sided p of a rising least-squares slope, row by row (each row one tail of >= 3 epochs)."""
    count = series.shape[1]
    x = np.arange(count, dtype=float) - (count - 1) / 2
    sxx = float((x**2).sum())
    centred = series - series.mean(axis=1, keepdims=True)
    slope = centred @ x / sxx
    residual = centred - slope[:, None] * x
    stderr = np.sqrt((residual**2).sum(axis=1) / (count - 2) / sxx)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(stderr > 0, stats.t.sf(slope / stderr, count - 2), np.where(slope > 0, 0.0, 1.0))


@dataclasses.dataclass(frozen=True)
class Sign:
    """One run's overfitting sign: both trends after the lowest window, whether the rule fires, its false-alarm rate."""

    validation: Trend
    training: Trend
    fires: bool
    false_alarm: float
    calibrated_p: float  # the share of flat-tail curves whose whole rule gives a p this small or smaller (1 if training does not fall)


def sign(val_loss: Sequence[float], train_loss: Sequence[float], window: int, significance: float, simulations: int, seed: int) -> Sign:
    values = np.asarray(val_loss, dtype=float)
    start = int(lowest_window(values[None, :], window)[0])
    validation, training = trend(val_loss, start), trend(train_loss, start)
    fires = bool(validation.p_rising < significance and training.slope < 0)
    if not validation.residuals:
        return Sign(validation, training, False, math.nan, math.nan)
    # Flat from the lowest window on, with the tail's own noise; the whole rule on each such curve.
    rng = np.random.default_rng(seed)
    level = float(values[start - 1 : start - 1 + window].mean())
    noise = rng.choice(np.asarray(validation.residuals), size=(simulations, len(values) - start + 1), replace=True)
    curves = np.concatenate([np.broadcast_to(values[: start - 1], (simulations, start - 1)), level + noise], axis=1)
    starts = lowest_window(curves, window)
    simulated = np.ones(simulations)
    for first in np.unique(starts):
        rows = starts == first
        if len(values) - first + 1 >= 3:
            simulated[rows] = _rising_p(curves[rows, first - 1 :])
    training_falls = training.slope < 0
    # Monte Carlo p with the observed curve counted among the simulated ones, so it is never 0.
    calibrated = (1 + int(np.sum(simulated <= validation.p_rising))) / (simulations + 1) if training_falls else 1.0
    return Sign(validation, training, fires, float(np.mean(simulated < significance)) if training_falls else 0.0, float(calibrated))


def best_epoch(val_loss: Sequence[float]) -> int:
    """The epoch (from 1) of least validation loss: the one place it is searched."""
    return int(np.argmin(val_loss)) + 1
