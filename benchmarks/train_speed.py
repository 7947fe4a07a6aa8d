"""Training speed: the project's training path against plain Keras written like the notebook.

Run from the repository root, with the prepared data present (`dvc repro prepare` or `dvc pull`):

    python -m benchmarks.train_speed            # writes reports/benchmarks/train_speed.{json,md}

For each model it times training images per second through two paths, interleaved so that the
machine's noise falls on both alike, after a warm-up epoch:

- baseline: the notebook's way, float32 numpy arrays into `model.fit` (batch 140);
- project: `stages.train.fit`'s settings for the model (its declared precision).

Each timing is a whole epoch over a fixed window of training images, without validation; the
report gives medians and their ratio. It also times a no-op `dvc repro` and measures the peak
resident memory of one training stage (one epoch on the full data, in a scratch directory).
"""

from __future__ import annotations

import argparse
import os
import platform
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

from stages.builder import build_model
from stages.config import load_params
from stages.io import read_npz, write_json, write_text


def _images_per_second(spec, precision: str, x, y, batch_size: int, seed: int) -> float:
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(seed)
    model = build_model(spec)
    model.fit(x[: batch_size * 10], y[: batch_size * 10], batch_size=batch_size, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    return len(y) / seconds


def machine() -> str:
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "unknown CPU")
        features = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {flag}" in text]
        flags = f"{model}; {', '.join(features)}"
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {flags}; Python {platform.python_version()}, Keras {keras.__version__}"


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
        command = [sys.executable, "-m", "stages", "train", model_name, "--data", str(Path("data/prepared").resolve()), "--model", "m.keras", "--log", "log"]
        subprocess.run(command, cwd=scratch, check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_speed")
    parser.add_argument("--images", type=int, default=14_000, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per path and model")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/train_speed"))
    args = parser.parse_args(argv)

    params = load_params()
    train = read_npz("data/prepared/train.npz")
    x, y = train["x"][: args.images], train["y"][: args.images]
    results = {}
    for name, spec in params.models.items():
        baseline, project = [], []
        for _ in range(args.repeats):
            baseline.append(_images_per_second(spec, "float32", x, y, params.train.batch_size, params.train.seed))
            project.append(_images_per_second(spec, spec.precision, x, y, params.train.batch_size, params.train.seed))
        results[name] = {
            "precision": spec.precision,
            "baseline_images_per_s": round(statistics.median(baseline), 1),
            "project_images_per_s": round(statistics.median(project), 1),
            "ratio": round(statistics.median(project) / statistics.median(baseline), 3),
            "baseline_samples": [round(value, 1) for value in baseline],
            "project_samples": [round(value, 1) for value in project],
        }
        print(name, results[name], flush=True)
    report = {
        "machine": machine(),
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
        f"Medians of {args.repeats} interleaved epochs of {len(y):,} images each, after a warm-up, without validation.",
        "",
        "| Model | Precision | Plain Keras float32 (images/s) | Project (images/s) | Ratio |",
        "|---|---|--:|--:|--:|",
        *[
            f"| {name} | {row['precision']} | {row['baseline_images_per_s']:,.0f} | {row['project_images_per_s']:,.0f} | {row['ratio']:.2f}x |"
            for name, row in results.items()
        ],
        "",
        f"No-op `dvc repro`: {report['noop_repro_seconds']} s. Peak resident memory of one training stage: {report['train_stage_peak_rss_gib']} GiB.",
        "",
    ]
    write_text(args.out.with_suffix(".md"), "\n".join(lines))


if __name__ == "__main__":
    main()
