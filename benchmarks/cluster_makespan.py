"""How long the full run at five seeds takes on 1 to 16 Dask workers: a simulation from measured times.

    python -m benchmarks.cluster_makespan     # writes reports/benchmarks/cluster_makespan.{json,md}

Nothing is trained. Each stage of the full pipeline at seeds 0-4 (the main run at seed 0, a replica of
every model at seeds 1-4, each ablation at seeds 0-4) gets a duration measured on the machine the
committed results come from:

- `train@`, `replica@`, `ablation@`: the run record's `train_seconds` (reports/runs/, fit time only:
  the stage's start-up and scoring, about 10-20 s, are not in it). Seeds without a record yet take
  the median of that model's recorded runs, and the report says which;
- download, prepare, evaluate, plot, report: the stage's median wall time in reports/benchmarks/short_stages.json
  (`python -m benchmarks.short_stages`, each rerun alone; a new user's first `dvc repro` skips evaluate, plot
  and report when the main models come back the committed bytes, so full_repro.json does not time them).

The schedule is simulated as Dask runs `python -m stages.tools.cluster`'s tasks: a stage is ready when
the stages it depends on are done, and a free worker takes the ready stage submitted first (here in
`dvc.yaml` order; Dask's default priority is submission order). One stage per worker at a time, each
on a machine like the one measured. Data transfer and clone times are left out.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from stages.files import write_json, write_text
from stages.params.base import read_yaml

WORKERS = (1, 2, 4, 8, 16)
SEEDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float
    after: tuple[str, ...]
    estimated: bool = False


def _record_seconds(path: Path) -> float | None:
    return json.loads(path.read_text())["train_seconds"] if path.exists() else None


def pipeline(params: dict, runs: Path, short_stages: dict) -> list[Stage]:
    """The full run's stages at SEEDS, in dvc.yaml order, with their durations."""
    measured = {entry["stage"]: entry["median"] for entry in short_stages["stages"]}
    models = list(params["models"])
    variants = list(params["ablations"]["models"])

    def training(kind: str, model: str, seed: int, path: Path) -> Stage:
        # The main run (train@, seed 0) is a run of the model like its replicas: all count toward the median.
        recorded = [_record_seconds(file) for file in [runs / "train" / f"{model}.json", *sorted((runs / "replica").glob(f"{model}-seed-*.json"))]]
        if kind == "ablation":
            recorded = [_record_seconds(file) for file in sorted((runs / "ablation").glob(f"{model}-seed-*.json"))]
        seconds = _record_seconds(path)
        name = f"{kind}@{model}" if kind == "train" else f"{kind}@{model}-{seed}"
        if seconds is None:
            return Stage(name, statistics.median(value for value in recorded if value is not None), ("prepare",), estimated=True)
        return Stage(name, seconds, ("prepare",))

    stages = [Stage("download", measured["download"], ()), Stage("prepare", measured["prepare"], ("download",))]
    stages += [training("train", model, 0, runs / "train" / f"{model}.json") for model in models]
    stages += [training("replica", model, seed, runs / "replica" / f"{model}-seed-{seed}.json") for model in models for seed in SEEDS[1:]]
    stages += [training("ablation", variant, seed, runs / "ablation" / f"{variant}-seed-{seed}.json") for variant in variants for seed in SEEDS]
    stages += [Stage(f"evaluate@{model}", measured[f"evaluate@{model}"], (f"train@{model}",)) for model in models]
    stages += [Stage(f"plot@{model}", measured[f"plot@{model}"], (f"train@{model}",)) for model in models]
    training_stages = tuple(stage.name for stage in stages if stage.name.split("@")[0] in {"replica", "ablation"})
    after_report = (*(f"evaluate@{model}" for model in models), *(f"plot@{model}" for model in models), *training_stages)
    stages.append(Stage("report", measured["report"], after_report))
    return stages


def per_model(stages: list[Stage]) -> dict[str, list[float]]:
    """The recorded (not estimated) training seconds of each model or ablation, in stage order."""
    values: dict[str, list[float]] = {}
    for stage in stages:
        kind, _, target = stage.name.partition("@")
        if kind in {"train", "replica", "ablation"} and not stage.estimated:
            values.setdefault(target.rsplit("-", 1)[0] if kind != "train" else target, []).append(stage.seconds)
    return values


def makespan(stages: list[Stage], workers: int) -> float:
    """The finish time of the last stage when `workers` take ready stages in submission order."""
    order = {stage.name: index for index, stage in enumerate(stages)}
    waiting = {stage.name: set(stage.after) for stage in stages}
    ready = [order[name] for name, after in waiting.items() if not after]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    free, now, done = workers, 0.0, 0
    while done < len(stages):
        while free and ready:
            stage = stages[heapq.heappop(ready)]
            heapq.heappush(running, (now + stage.seconds, stage.name))
            free -= 1
        now, finished = heapq.heappop(running)
        free += 1
        done += 1
        for name, after in waiting.items():
            if finished in after:
                after.discard(finished)
                if not after:
                    heapq.heappush(ready, order[name])
    return now


def critical_path(stages: list[Stage]) -> float:
    finish: dict[str, float] = {}
    for stage in stages:  # dvc.yaml order lists every stage after those it depends on
        finish[stage.name] = stage.seconds + max((finish[name] for name in stage.after), default=0.0)
    return max(finish.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    args = parser.parse_args()
    params = read_yaml(Path("params.yaml").read_text())
    short_stages = json.loads(Path("reports/benchmarks/short_stages.json").read_text())
    stages = pipeline(params, Path("reports/runs"), short_stages)
    work, path = sum(stage.seconds for stage in stages), critical_path(stages)
    rows = []
    serial = makespan(stages, 1)
    for workers in WORKERS:
        seconds = makespan(stages, workers)
        rows.append(
            {
                "workers": workers,
                "seconds": round(seconds),
                "hours": round(seconds / 3600, 2),
                "speedup": round(serial / seconds, 2),
                "bound_seconds": round(max(path, work / workers)),
            }
        )
    estimated = [stage.name for stage in stages if stage.estimated]
    result = {
        "machine": short_stages["machine"],
        "stages": len(stages),
        "work_seconds": round(work),
        "critical_path_seconds": round(path),
        "estimated": estimated,
        "rows": rows,
    }
    write_json(args.out / "cluster_makespan.json", result)
    lines = [
        "# The full run at five seeds on a Dask cluster: simulated makespan",
        "",
        "A simulation, not a measurement of a cluster: stage durations measured on one machine, scheduled as Dask",
        "schedules `python -m stages.tools.cluster`'s tasks (a free worker takes the ready stage submitted first).",
        f"Durations: the run records' `train_seconds` and the medians in `reports/benchmarks/short_stages.json`, from {short_stages['machine']}.",
        "Clone, transfer and stage start-up times are left out. Command: `python -m benchmarks.cluster_makespan`.",
        "",
        f"{len(stages)} stages, {work / 3600:.2f} hours of work; the longest chain of dependent stages is {path / 60:.1f} minutes.",
        (
            f"Not yet run, so given the median of the same model's recorded runs ({len(estimated)}): {', '.join(estimated)}."
            if estimated
            else "Every training stage has its own run record; none is estimated."
        ),
        "",
        "| Workers | Makespan (h) | Speedup | Lower bound (h) |",
        "|--:|--:|--:|--:|",
        *(f"| {row['workers']} | {row['hours']:.2f} | {row['speedup']:.2f}x | {row['bound_seconds'] / 3600:.2f} |" for row in rows),
        "",
        "Lower bound: the longer of the critical path and the work divided by the workers.",
        "",
        "The training stages' `train_seconds` as recorded, per model or ablation over its seeds. A shared machine's",
        "runs differ by the other work beside them (a run's slowest epoch is in its record's `epoch_seconds`):",
        "",
        "| Model | Runs | Fastest (s) | Median (s) | Slowest (s) |",
        "|---|--:|--:|--:|--:|",
        *(
            f"| {model} | {len(values)} | {min(values):,.0f} | {statistics.median(values):,.0f} | {max(values):,.0f} |"
            for model, values in per_model(stages).items()
        ),
        "",
    ]
    write_text(args.out / "cluster_makespan.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
