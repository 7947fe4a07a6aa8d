"""Training speed: the pinned float32 path against native float32, bf16 and plain Keras, interleaved.

Run from the repository root, with the prepared data present (`dvc repro prepare` or `dvc pull`):

    python -m benchmarks.train_speed            # writes reports/benchmarks/train_speed.{json,md}

The numerics are process-wide (TensorFlow reads them when it starts), so each measurement is a
process of its own (`--worker`): it applies one setting the way the stages do, builds the model
from seed 0, trains a warm-up of 10 batches, then times `--epochs` whole epochs of `--images`
images with the train stage's own `EpochLog` (no validation). Paths, per main model:

- plain: the notebook's way, float32 numpy arrays into `model.fit`, under the pinned numerics;
- pinned: the train stage's `tf.data` path in float32 under `params.yaml: numerics` (what `dvc repro` runs);
- native: the same with `onednn_isa: native` (oneDNN's widest kernels for this CPU);
- bf16: native with `precision: mixed_bfloat16` (fast only with AVX512_BF16; emulated elsewhere).

The processes run round-robin (round 1: every model through every path, then round 2, ...), so
the machine's drift falls on all of them alike; the report gives each path's median images/s over
the rounds, the ratios to pinned, and the pinned path's share of this CPU's float32 FMA peak at
AVX2: training FLOPs per image (3x the forward pass's multiply-adds x 2, convolutions and dense
layers) x images/s, over threads x clock x 32 FLOP per cycle (two 256-bit FMA pipes per core, as
on AMD Zen 4 and most Intel cores; the clock is /proc/cpuinfo's, the nominal one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.machine import describe
from stages.files import write_json, write_text
from stages.params.base import load
from stages.params.numerics import NumericsSection
from stages.params.training import load_training

PATHS = ("plain", "pinned", "native", "bf16")
FLOPS_PER_CYCLE_AVX2 = 32  # float32: two FMA pipes x 8 lanes x 2 FLOP


def _worker(path: str, model_name: str, images: int, epochs: int) -> dict[str, Any]:
    """One measurement in this process: apply the path's numerics, then import TensorFlow and time."""
    import dataclasses

    from stages.training.environment import apply_numerics, apply_threads, read_cpu

    numerics = load(NumericsSection).numerics
    if path in ("native", "bf16"):
        numerics = numerics.model_copy(update={"onednn_isa": "native"})
    apply_numerics(numerics, read_cpu())
    import keras

    apply_threads(numerics)
    from stages.files import read_npz
    from stages.training.builder import precision_scope
    from stages.training.fit import EpochLog, prepare_model, steps_per_epoch, training_batches

    params = load_training()
    spec = dataclasses.replace(params.spec(model_name), precision="mixed_bfloat16" if path == "bf16" else "float32")
    batch_size = params.train.batch_size
    train = read_npz("data/prepared/train.npz")
    x, y = train["x"][:images], train["y"][:images]
    with precision_scope(spec.precision):
        model = prepare_model(spec, 0)
        timer = EpochLog(model_name, epochs + 1, len(y))
        if path == "plain":
            model.fit(x[: 10 * batch_size], y[: 10 * batch_size], batch_size=batch_size, epochs=1, verbose=0)
            for _ in range(epochs):
                model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer])
        else:
            warm = 10 * batch_size
            model.fit(training_batches(x[:warm], y[:warm], batch_size, 0, 0, 1), steps_per_epoch=10, epochs=1, shuffle=False, verbose=0)
            for epoch in range(epochs):
                batches = training_batches(x, y, batch_size, 0, epoch, epoch + 1)
                steps = steps_per_epoch(len(y), batch_size)
                model.fit(batches, steps_per_epoch=steps, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0, callbacks=[timer])
    keras.backend.clear_session()
    return {"images_per_s": [len(y) / seconds for seconds in timer.epoch_seconds], "training_flops_per_image": training_flops(model)}


def training_flops(model) -> int:
    """FLOPs to train on one image: 3x the forward pass's multiply-adds (forward, input and weight gradients) x 2."""
    import keras

    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels = layer.output.shape
            macs += height * width * channels * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2]
        elif isinstance(layer, keras.layers.Dense):
            macs += layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3 * 2 * int(macs)


def noop_repro_seconds(repeats: int = 3) -> float:
    """Median wall time of `dvc repro` with nothing to do."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "-q"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def training_stage_peak_gib(model_name: str) -> float | None:
    """Peak RSS of `python -m stages train` for one epoch on the full prepared data, in a scratch directory."""
    with tempfile.TemporaryDirectory() as scratch:
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["train"]["epochs"] = 1
        Path(scratch, "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        shutil.copy("dvc.yaml", Path(scratch, "dvc.yaml"))
        data = str(Path("data/prepared").resolve())
        command = [sys.executable, "-m", "stages", "train", model_name, "--data", data, "--model", "m.keras", "--log", "log", "--record", "record.json"]
        subprocess.run(command, cwd=scratch, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    return children_peak_gib()


def children_peak_gib() -> float | None:
    """The largest resident set of this process's finished children, in GiB; None on Windows, whose
    Python has no `resource` module. getrusage's ru_maxrss is in KiB on Linux and in bytes on macOS."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def _clock_hz() -> float | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1]) * 1e6
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_speed")
    parser.add_argument("--images", type=int, default=7_000, help="training images per timed epoch")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every model through every path (the committed report used 3)")
    parser.add_argument("--models", default="model1,model2,model3,model4")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/train_speed"))
    parser.add_argument("--note", default="", help="what else ran on the machine, for the report")
    parser.add_argument(
        "--no-stage-checks", action="store_true", help="skip the no-op `dvc repro` and the training stage's peak memory (needs an up-to-date pipeline)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("PATH", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker[0], args.worker[1], args.images, args.epochs)))
        return

    models = args.models.split(",")
    samples: dict[str, dict[str, list[float]]] = {name: {path: [] for path in PATHS} for name in models}
    flops: dict[str, int] = {}
    for round_number in range(args.rounds):
        for name in models:
            for path in PATHS:
                command = [sys.executable, "-m", "benchmarks.train_speed", "--worker", path, name, "--images", str(args.images), "--epochs", str(args.epochs)]
                result = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
                measured = json.loads(result.stdout.strip().splitlines()[-1])
                samples[name][path] += measured["images_per_s"]
                flops[name] = measured["training_flops_per_image"]
                print(f"round {round_number + 1} {name} {path}: {', '.join(f'{value:.0f}' for value in measured['images_per_s'])} images/s", flush=True)
    numerics = load(NumericsSection).numerics
    clock = _clock_hz()
    peak = numerics.intra_op_threads * clock * FLOPS_PER_CYCLE_AVX2 if clock else None
    results = {}
    for name in models:
        medians = {path: statistics.median(values) for path, values in samples[name].items()}
        results[name] = {
            "median_images_per_s": {path: round(value, 1) for path, value in medians.items()},
            "ratio_to_pinned": {path: round(value / medians["pinned"], 3) for path, value in medians.items()},
            "samples_images_per_s": {path: [round(value, 1) for value in values] for path, values in samples[name].items()},
            "training_flops_per_image": flops[name],
            "pinned_share_of_avx2_fma_peak": round(flops[name] * medians["pinned"] / peak, 3) if peak else None,
        }
    report = {"machine": describe(), "numerics": numerics.model_dump(), "images_per_epoch": args.images, "epochs": args.epochs, "rounds": args.rounds}
    report |= {"clock_hz": clock, "avx2_fma_peak_flops": peak, "note": args.note, "models": results}
    if not args.no_stage_checks:
        peak_gib = training_stage_peak_gib(models[0])
        report |= {"noop_repro_seconds": round(noop_repro_seconds(), 2), "train_stage_peak_rss_gib": None if peak_gib is None else round(peak_gib, 2)}
    write_json(args.out.with_suffix(".json"), report)
    lines = [
        "# Training speed",
        "",
        f"Machine: {report['machine']}. Command: `python -m benchmarks.train_speed`." + (f" {args.note}" if args.note else ""),
        f"Medians of {args.rounds} round-robin rounds ({args.epochs} timed epoch(s) of {args.images:,} images per measurement, each a process",
        "of its own after a 10-batch warm-up, no validation). pinned = `dvc repro`'s path under `params.yaml: numerics`",
        f"({numerics.describe()}); native = the same with `onednn_isa: native`; bf16 = native in `mixed_bfloat16`;",
        "plain = the notebook's numpy arrays into `model.fit`, float32, pinned numerics. Ratios are to pinned.",
        "",
        "| Model | pinned (images/s) | native float32 | bf16 | plain Keras | spread of pinned (min-max) | pinned share of the AVX2 FMA peak |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, row in results.items():
        median, ratio, pinned = row["median_images_per_s"], row["ratio_to_pinned"], row["samples_images_per_s"]["pinned"]
        share = f"{100 * row['pinned_share_of_avx2_fma_peak']:.0f}%" if row["pinned_share_of_avx2_fma_peak"] is not None else "unknown"
        lines.append(
            f"| {name} | {median['pinned']:,.0f} | {median['native']:,.0f} ({ratio['native']:.2f}x) | {median['bf16']:,.0f} ({ratio['bf16']:.2f}x) "
            f"| {median['plain']:,.0f} ({ratio['plain']:.2f}x) | {min(pinned):,.0f}-{max(pinned):,.0f} | {share} |"
        )
    if peak:
        lines += [
            "",
            f"Peak: {numerics.intra_op_threads} threads x {clock / 1e9:.2f} GHz x {FLOPS_PER_CYCLE_AVX2} FLOP/cycle = {peak / 1e9:.0f} GFLOP/s. The clock is",
            "/proc/cpuinfo's nominal one: a CPU that boosts above it (a VM does not say) makes these shares too high by that factor.",
        ]
    if not args.no_stage_checks:
        lines += [
            "",
            f"No-op `dvc repro`: {report['noop_repro_seconds']} s (median of 3). Peak resident memory of one training stage "
            f"({models[0]}, one epoch of the full data): "
            + (
                "not measured (Python has no `resource` module on Windows)."
                if report["train_stage_peak_rss_gib"] is None
                else f"{report['train_stage_peak_rss_gib']} GiB."
            ),
        ]
    write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
