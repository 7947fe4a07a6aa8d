"""bf16 without bf16 hardware: how much slower a `mixed_bfloat16` model trains than in float32.

Run from the repository root, with the prepared data present (`dvc repro prepare`):

    python -m benchmarks.bf16_emulation    # under params.yaml: numerics, every model (or --models ...)
    (set params.yaml numerics.onednn_isa: AVX512_CORE to cap a bf16 CPU below bf16; AVX2 cannot run bf16 with oneDNN on)

For each model it builds the model twice with the same seed, once per
precision, and times whole training epochs of `--images` images through the train stage's own
`tf.data` path, interleaved epoch by epoch after a warm-up, so the machine's noise falls on both.
Writes `reports/benchmarks/bf16_emulation.{json,md}` (medians, spread, ratio); the train stage's
warning on such CPUs quotes the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

from benchmarks.machine import describe
from stages.files import read_npz, write_json, write_text
from stages.params.base import load
from stages.params.numerics import NumericsSection, bf16_problem
from stages.params.training import load_training
from stages.training.environment import apply_numerics, apply_threads, bf16_native, read_cpu


def _epoch(model, x, y, batch_size: int, seed: int, epoch: int) -> float:
    from stages.training.fit import EpochLog, steps_per_epoch, training_batches

    timer = EpochLog(model.name, epoch + 1, len(y))
    batches = training_batches(x, y, batch_size, seed, epoch, epoch + 1)
    model.fit(batches, steps_per_epoch=steps_per_epoch(len(y), batch_size), epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0, callbacks=[timer])
    return timer.epoch_seconds[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bf16_emulation")
    parser.add_argument("--images", type=int, default=1_400, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per precision and model")
    parser.add_argument("--models", nargs="*", help="models to time (default: every model)")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/bf16_emulation"))
    args = parser.parse_args(argv)

    # The numerics of params.yaml, applied before TensorFlow is imported, as the stages apply them.
    numerics, cpu = load(NumericsSection).numerics, read_cpu()
    problem = bf16_problem(numerics)
    if problem:
        raise SystemExit(f"error: params.yaml: {problem}")
    for line in apply_numerics(numerics, cpu):
        print(f"warning: {line}", flush=True)
    import keras

    from stages.training.fit import prepare_model

    apply_threads(numerics)
    params = load_training()
    train = read_npz("data/prepared/train.npz")
    x, y = train["x"][: args.images], train["y"][: args.images]
    batch_size, seed = params.train.batch_size, params.train.seed
    names = args.models or list(params.models)
    results = {}
    for name in names:
        spec = params.spec(name)
        models = {precision: prepare_model(dataclasses.replace(spec, precision=precision), seed) for precision in ("float32", "mixed_bfloat16")}
        for model in models.values():
            _epoch(model, x[: batch_size * 2], y[: batch_size * 2], batch_size, seed, 0)
        samples: dict[str, list[float]] = {precision: [] for precision in models}
        for epoch in range(args.repeats):
            for precision, model in models.items():
                samples[precision].append(len(y) / _epoch(model, x, y, batch_size, seed, epoch + 1))
        keras.backend.clear_session()
        medians = {precision: statistics.median(values) for precision, values in samples.items()}
        results[name] = {
            "float32_images_per_s": round(medians["float32"], 1),
            "bf16_images_per_s": round(medians["mixed_bfloat16"], 1),
            "slowdown": round(medians["float32"] / medians["mixed_bfloat16"], 2),
            "samples_images_per_s": {precision: [round(value, 1) for value in values] for precision, values in samples.items()},
        }
        print(name, results[name], flush=True)
    report = {"machine": describe(), "bf16_instructions": bf16_native(numerics, cpu), "onednn_isa_cap": numerics.onednn_isa}
    report.update(images_per_epoch=len(y), repeats=args.repeats, models=results)
    write_json(args.out.with_suffix(".json"), report)
    lines = [
        "# bf16 without bf16 instructions",
        "",
        f"Machine: {report['machine']}. bf16 instructions usable: {report['bf16_instructions']}; oneDNN ISA cap: {report['onednn_isa_cap'] or 'none'}.",
        f"Command: `python -m benchmarks.bf16_emulation --images {len(y)} --repeats {args.repeats}`. Medians of {args.repeats} interleaved epochs",
        f"of {len(y):,} images per precision, after a warm-up, through the train stage's `tf.data` path, without validation.",
        "",
        "| Model | float32 (images/s) | mixed_bfloat16 (images/s) | bf16 slower by | samples float32 / bf16 |",
        "|---|--:|--:|--:|---|",
        *[
            f"| {name} | {row['float32_images_per_s']:,.0f} | {row['bf16_images_per_s']:,.0f} | {row['slowdown']:.1f}x "
            f"| {row['samples_images_per_s']['float32']} / {row['samples_images_per_s']['mixed_bfloat16']} |"
            for name, row in results.items()
        ],
        "",
    ]
    write_text(args.out.with_suffix(".md"), "\n".join(lines))


if __name__ == "__main__":
    main()
