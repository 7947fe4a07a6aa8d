"""Fingerprint: does this machine compute what the committed runs computed? `python -m stages fingerprint`.

Trains each declared model and ablation a few batches (default 20 of 140, seed 0) on the first
training images of MNIST, with the pinned numerics (`params.yaml: numerics`, applied before
TensorFlow starts) and the train stage's own builder and batch pipeline, then prints per model the
MD5 of its weights (in `get_weights` order) and of its predictions on 1,000 images, with the
machine it ran on. The expected digests are committed in `reports/fingerprint.json`: the reference
CPU's (the one that trained the committed runs) and, under `other_cpus`, those of each CPU model a
session measured to compute other bytes. Digests equal to the reference's, or to a recorded CPU's
(the line then names which models compute the committed bytes there), pass; any other digest is an
error naming the model, the CPU and the settings. Equal digests say this CPU runs
the same kernels in the same order as the reference on these batches, every model's layers and
optimizer included; they are evidence for, not proof of, equal bytes after a full run (a stage's
own `dvc repro -f -s` is that proof).

    python -m stages fingerprint                        # compare with reports/fingerprint.json
    python -m stages fingerprint --update               # write this machine's digests there, as the reference
    python -m stages fingerprint --record               # add this CPU's other digests under `other_cpus`
    python -m stages fingerprint --steps 429 --weights DIR   # one full epoch, weights saved (benchmarks.portability)

It reads `data/raw/mnist.npz` (the download stage's output), normalised as the prepare stage does,
so it needs neither the prepared data nor a model file.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stages.data.npz import write_npz
from stages.errors import StageError
from stages.files import read_json, read_npz, write_json
from stages.params.base import load
from stages.params.numerics import NumericsSection
from stages.params.training import ModelSpec, load_training
from stages.prepare import normalize
from stages.training.builder import precision_scope
from stages.training.environment import environment, read_cpu
from stages.training.fit import prepare_model, training_batches

logger = logging.getLogger(__name__)

EXPECTED = Path("reports/fingerprint.json")
BATCH_SIZE = 140
SEED = 0
PREDICTED_IMAGES = 1_000


class FingerprintMismatch(StageError, RuntimeError):
    """This machine's digests differ from the committed ones."""


def _md5(arrays: list[np.ndarray]) -> str:
    digest = hashlib.md5()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def train_a_little(spec: ModelSpec, x: np.ndarray, y: np.ndarray, steps: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """`spec` trained `steps` batches from seed 0: its digests and final loss, and its weights."""
    with precision_scope(spec.precision):
        model = prepare_model(spec, SEED)
        history = model.fit(training_batches(x, y, BATCH_SIZE, SEED, 0, 1), steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
        predictions = model.predict(x[:PREDICTED_IMAGES], batch_size=BATCH_SIZE, verbose=0)
    weights = model.get_weights()
    keras.backend.clear_session()  # each model's graphs start afresh (and no retracing notices)
    result = {"weights": _md5(weights), "predictions": _md5([predictions]), "loss": float(history.history["loss"][-1])}
    return result, weights


def differences(found: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> list[str]:
    """One phrase per model whose digests differ from (or are missing in) `expected`."""
    problems = []
    for name, digests in found.items():
        wanted = expected.get(name)
        if wanted is None:
            problems.append(f"{name}: no committed digest")
            continue
        problems += [f"{name} {key} {digests[key]}, expected {wanted[key]}" for key in ("weights", "predictions") if digests[key] != wanted[key]]
    return problems


def agreeing(found: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> list[str]:
    """The models of `found` whose digests equal `expected`'s."""
    return [name for name in found if not differences({name: found[name]}, expected)]


def record(path: Path, expected: dict[str, Any], result: dict[str, Any]) -> None:
    """Add `result` to `path`'s `other_cpus`, replacing an entry with the same digests (the same bytes, measured again)."""
    if not differences(result["models"], expected["models"]):
        logger.info("this machine computes the reference digests of %s: nothing to record", path)
        return
    others = [other for other in expected.get("other_cpus", []) if differences(result["models"], other["models"])]
    entry = {"environment": result["environment"], "models": result["models"]}
    write_json(path, {**expected, "other_cpus": [*others, entry]})
    logger.info("digests of %s recorded in %s under other_cpus", result["environment"]["cpu"], path)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages fingerprint")
    parser.add_argument("--raw", type=Path, default=Path("data/raw/mnist.npz"), help="MNIST as the download stage writes it")
    parser.add_argument("--expected", type=Path, default=EXPECTED)
    parser.add_argument("--update", action="store_true", help="write this machine's digests to --expected instead of comparing")
    parser.add_argument("--record", action="store_true", help="add this machine's digests to --expected as another CPU's (other_cpus)")
    parser.add_argument("--steps", type=int, default=20, help="batches of 140 per model (default 20; 429 is one epoch of MNIST)")
    parser.add_argument("--out", type=Path, help="also write this machine's result as JSON here")
    parser.add_argument("--weights", type=Path, help="save each model's final weights here (<model>.npz), for comparing machines")
    parser.add_argument("--models", help="comma-separated models and ablations (default: every one declared)")
    args = parser.parse_args(argv)

    if args.steps < 1:
        raise StageError(f"--steps must be at least 1, got {args.steps}")
    if args.record and (args.models or args.update):
        raise StageError("--record adds every declared model's digests: give it without --models and --update")
    params = load_training()
    numerics = load(NumericsSection).numerics
    names = args.models.split(",") if args.models else [*params.models, *params.ablations.models]
    try:
        raw = read_npz(args.raw)
    except (OSError, ValueError) as error:
        raise StageError(f"{args.raw}: cannot be read ({error}); run `dvc repro download` first") from error
    images = min(args.steps * BATCH_SIZE, len(raw["y_train"]))
    x, y = normalize(raw["x_train"][:images]), raw["y_train"][:images].astype(np.int64)
    cpu = read_cpu()
    logger.info("fingerprint on %s (%s): %s; %d batches of %d, seed %d", cpu.model, cpu.machine, numerics.describe(), args.steps, BATCH_SIZE, SEED)
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        found[name], weights = train_a_little(params.spec(name), x, y, math.ceil(images / BATCH_SIZE))
        logger.info("%-14s weights %s  predictions %s  loss %.6f", name, found[name]["weights"], found[name]["predictions"], found[name]["loss"])
        if args.weights:
            write_npz(args.weights / f"{name}.npz", {f"w{index:03d}": weight for index, weight in enumerate(weights)})
    result = {"steps": args.steps, "batch_size": BATCH_SIZE, "seed": SEED, "environment": environment(numerics, cpu), "models": found}
    if args.out:
        write_json(args.out, result)
    if args.update:
        write_json(args.expected, result)
        logger.info("digests written to %s", args.expected)
        return
    expected = read_json(args.expected)
    if expected["steps"] != args.steps:
        raise StageError(f"{args.expected} holds digests after {expected['steps']} batches; run with --steps {expected['steps']}")
    if expected["environment"]["numerics"] != numerics.model_dump():
        raise StageError(
            f"{args.expected} holds digests made with numerics {expected['environment']['numerics']}, params.yaml pins {numerics.model_dump()}: "
            "the digests of other numerics are other bytes; run `python -m stages fingerprint --update` on the reference machine"
        )
    if args.record:
        record(args.expected, expected, result)
        return
    problems = differences(found, expected["models"])
    if not problems:
        logger.info("every digest matches %s: this machine computes the committed bytes on these batches", args.expected)
        return
    others = expected.get("other_cpus", [])
    for other in others:
        if not differences(found, other["models"]):
            same = agreeing(found, expected["models"])
            moved = [name for name in found if name not in same]
            logger.info(
                "every digest matches those %s records for %s: on this CPU %s the committed bytes and %s other bytes, "
                "so a `dvc repro` of %s stages gives other results than the committed ones (how far: reports/benchmarks/portability.md)",
                args.expected,
                other["environment"]["cpu"],
                f"{', '.join(same)} {'gives' if len(same) == 1 else 'give'}" if same else "no model gives",
                ", ".join(moved),
                "their" if len(moved) > 1 else "its",
            )
            return
    recorded = f", nor those it records for {', '.join(other['environment']['cpu'] for other in others)}" if others else ""
    raise FingerprintMismatch(
        f"this machine computes other bytes than {args.expected} ({expected['environment']['cpu']}){recorded}: {'; '.join(problems)}. "
        f"Here: {cpu.model} ({cpu.machine}), {numerics.describe()}. A `dvc repro` here gives results that differ from the "
        "committed ones (how far: reports/benchmarks/portability.md); `python -m stages fingerprint --record` adds this CPU's digests."
    )
