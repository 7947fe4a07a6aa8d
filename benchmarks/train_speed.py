"""Training speed: the project's training path against plain Keras written like the notebook.

Run from the repository root, with the prepared data present (`dvc repro prepare` or `dvc pull`):

    python -m benchmarks.train_speed            # writes reports/benchmarks/train_speed.{json,md}

For each model it builds three copies with the same seed and times whole training epochs of
`--images` images through three paths, interleaved epoch by epoch so that the machine's noise
falls on all of them alike, each after a warm-up:

- baseline: the notebook's way, float32 numpy arrays into `model.fit` (batch 140);
- project: the train stage's path (`stages/training/fit.py`), its `tf.data` batches and the model's declared precision;
- alternative: the project's path in the other precision (what the declared one is chosen over).

An epoch is timed by the train stage's own `EpochLog` (Keras' `on_epoch_begin` to `on_epoch_end`), without validation; the report
gives each path's median images/s and the ratio project / baseline. It also times a no-op
`dvc repro` and the peak resident memory of one training stage (`python -m stages train`, one
epoch on the full data, in a scratch directory).
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import yaml

from benchmarks.machine import describe
from stages.files import read_npz, write_json, write_text
from stages.params.training import load_training
from stages.training.fit import EpochLog, prepare_model, steps_per_epoch, training_batches

PRECISIONS = ("float32", "mixed_bfloat16")


def _baseline_epoch(model: keras.Model, x, y, batch_size: int) -> float:
    timer = EpochLog(model.name, 1, len(y))
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer])
    return timer.epoch_seconds[-1]


def _project_epoch(model: keras.Model, x, y, batch_size: int, seed: int, epoch: int) -> float:
    timer = EpochLog(model.name, epoch + 1, len(y))
    batches = training_batches(x, y, batch_size, seed, epoch, epoch + 1)
    model.fit(batches, steps_per_epoch=steps_per_epoch(len(y), batch_size), epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0, callbacks=[timer])
    return timer.epoch_seconds[-1]


def time_model(spec, x, y, batch_size: int, seed: int, repeats: int) -> dict:
    alternative = next(precision for precision in PRECISIONS if precision != spec.precision)
    baseline_model = prepare_model(dataclasses.replace(spec, precision="float32"), seed)
    project_model = prepare_model(spec, seed)
    # Each model keeps the precision it was built in; building leaves Keras' global policy as it was.
    alternative_model = prepare_model(dataclasses.replace(spec, precision=alternative), seed)
    warm = batch_size * 10
    _baseline_epoch(baseline_model, x[:warm], y[:warm], batch_size)
    _project_epoch(project_model, x[:warm], y[:warm], batch_size, seed, 0)
    _project_epoch(alternative_model, x[:warm], y[:warm], batch_size, seed, 0)
    samples: dict[str, list[float]] = {"baseline": [], "project": [], "alternative": []}
    for epoch in range(repeats):
        samples["baseline"].append(len(y) / _baseline_epoch(baseline_model, x, y, batch_size))
        samples["project"].append(len(y) / _project_epoch(project_model, x, y, batch_size, seed, epoch + 1))
        samples["alternative"].append(len(y) / _project_epoch(alternative_model, x, y, batch_size, seed, epoch + 1))
    keras.backend.clear_session()
    medians = {path: statistics.median(values) for path, values in samples.items()}
    return {
        "precision": spec.precision,
        "baseline_images_per_s": round(medians["baseline"], 1),
        "project_images_per_s": round(medians["project"], 1),
        "ratio": round(medians["project"] / medians["baseline"], 3),
        "alternative_precision": alternative,
        "alternative_images_per_s": round(medians["alternative"], 1),
        "alternative_ratio": round(medians["alternative"] / medians["baseline"], 3),
        "samples_images_per_s": {path: [round(value, 1) for value in values] for path, values in samples.items()},
    }


def noop_repro_seconds(repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "-q"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def training_stage_peak_gib(model_name: str) -> float:
    """Peak RSS of `python -m stages train` for one epoch on the full prepared data."""
    with tempfile.TemporaryDirectory() as scratch:
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["train"]["epochs"] = 1
        Path(scratch, "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        shutil.copytree("stages", Path(scratch, "stages"))
        data = str(Path("data/prepared").resolve())
        command = [sys.executable, "-m", "stages", "train", model_name, "--data", data, "--model", "m.keras", "--log", "log"]
        command += ["--record", "record.json", "--backup", "backup"]
        subprocess.run(command, cwd=scratch, check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_speed")
    parser.add_argument("--images", type=int, default=30_000, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per path and model (the committed report used 5)")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/train_speed"))
    args = parser.parse_args(argv)

    params = load_training()
    train = read_npz("data/prepared/train.npz")
    x, y = train["x"][: args.images], train["y"][: args.images]
    results = {}
    for name in params.models:
        results[name] = time_model(params.spec(name), x, y, params.train.batch_size, params.train.seed, args.repeats)
        print(name, results[name], flush=True)
    report = {
        "machine": describe(),
        "images_per_epoch": len(y),
        "repeats": args.repeats,
        "models": results,
        "noop_repro_seconds": round(noop_repro_seconds(), 2),
        "train_stage_peak_rss_gib": round(training_stage_peak_gib(next(iter(params.models))), 2),
    }
    write_json(args.out.with_suffix(".json"), report)
    lines = [
        "# Training speed",
        "",
        f"Machine: {report['machine']}. Command: `python -m benchmarks.train_speed`.",
        f"Medians of {args.repeats} interleaved epochs of {len(y):,} images per path, after a warm-up, without validation;",
        "baseline = the notebook's float32 numpy arrays into `model.fit`; project = `stages.train`'s `tf.data` path in the declared precision.",
        "",
        "| Model | Plain Keras float32 (images/s) | Project (images/s) | Project precision | Ratio | Other precision: images/s, ratio |",
        "|---|--:|--:|---|--:|---|",
        *[
            f"| {name} | {row['baseline_images_per_s']:,.0f} | {row['project_images_per_s']:,.0f} | {row['precision']} | {row['ratio']:.2f}x "
            f"| {row['alternative_precision']}: {row['alternative_images_per_s']:,.0f}, {row['alternative_ratio']:.2f}x |"
            for name, row in results.items()
        ],
        "",
        f"No-op `dvc repro`: {report['noop_repro_seconds']} s. Peak resident memory of one training stage: {report['train_stage_peak_rss_gib']} GiB.",
        "",
    ]
    write_text(args.out.with_suffix(".md"), "\n".join(lines))


if __name__ == "__main__":
    main()
