"""Wall time of the pipeline's short stages, each run alone: the durations the cluster makespan takes
from a measurement rather than from the training run records.

    python -m benchmarks.short_stages --workdir /tmp/full-run   # writes reports/benchmarks/short_stages.{json,md}

A new user's first `dvc repro` (benchmarks/full_repro.py) downloads and prepares the data and trains the
four main models; where those come back the committed bytes, DVC skips `evaluate`, `plot` and the report,
whose results are then current, so that run does not time them. Here each short stage (download,
prepare, evaluate@, plot@, report) is rerun with `dvc repro -f -s` in `--workdir`, a clone whose pipeline
is up to date (full_repro's clone after its run, say), round-robin over `--rounds` rounds so the machine's
drift falls on every stage alike, and the report gives each stage's median. These stages are
deterministic, so a forced rerun should write the bytes there were: the report says whether every file
git tracks in the clone (dvc.lock included) is unchanged afterwards and `dvc status` names no stage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import describe
from stages.files import write_json, write_text

KINDS = ("download", "prepare", "evaluate", "plot", "report")


def _dvc(workdir: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "dvc"), *arguments], cwd=workdir, capture_output=True, text=True)


def _fail(message: str) -> None:
    sys.exit(f"error: {message}")


def stale(workdir: Path) -> list[str]:
    """The stages `dvc status` in `workdir` names: changed deps or outputs, or missing ones."""
    status = _dvc(workdir, "status", "--json")
    if status.returncode != 0:
        _fail(f"dvc status failed in {workdir}:\n{status.stderr.strip()}")
    return sorted(json.loads(status.stdout or "{}"))


def snapshot(workdir: Path) -> dict[str, str]:
    """The SHA-256 of every file git tracks in `workdir` (dvc.lock included, so a DVC-cached output
    written with other bytes shows as a changed dvc.lock)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=workdir, capture_output=True, text=True, check=True).stdout.split("\0")
    return {name: hashlib.sha256((workdir / name).read_bytes()).hexdigest() for name in filter(None, listed) if (workdir / name).is_file()}


def summary(times: dict[str, list[float]]) -> list[dict]:
    """Each stage's wall times over the rounds and their median, in the order measured."""
    return [
        {"stage": stage, "seconds": [round(value, 1) for value in values], "median": round(statistics.median(values), 1)} for stage, values in times.items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.short_stages", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a clone of this repository whose pipeline is up to date (full_repro's)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each stage, round-robin (default 3)")
    parser.add_argument("--stages", nargs="+", metavar="STAGE", help="only these stages (default: every download, prepare, evaluate, plot and report stage)")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/short_stages"))
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: give 1 or more")
    if not (args.workdir / "dvc.yaml").is_file():
        _fail(f"--workdir {args.workdir}: no dvc.yaml there; give a clone of this repository")

    listed = _dvc(args.workdir, "stage", "list", "--name-only")
    if listed.returncode != 0:
        _fail(f"dvc stage list failed in {args.workdir}:\n{listed.stderr.strip()}")
    declared = listed.stdout.split()
    unknown = [name for name in args.stages or [] if name not in declared]
    if unknown:
        _fail(f"--stages: {', '.join(unknown)} not declared in {args.workdir / 'dvc.yaml'}")
    stages = args.stages or [name for name in declared if name.split("@")[0] in KINDS]

    names = stale(args.workdir)
    if names:
        _fail(
            f"{args.workdir}: dvc status names {', '.join(names)}; give a clone whose pipeline is up to date "
            "(after its `dvc repro`, e.g. python -m benchmarks.full_repro's)"
        )
    before = snapshot(args.workdir)

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.workdir, capture_output=True, text=True, check=True).stdout.strip()
    times: dict[str, list[float]] = {stage: [] for stage in stages}
    for round_number in range(1, args.rounds + 1):
        for stage in stages:
            started = time.perf_counter()
            result = _dvc(args.workdir, "repro", "-f", "-s", stage)
            seconds = time.perf_counter() - started
            if result.returncode != 0:
                _fail(f"dvc repro -f -s {stage} failed in {args.workdir} (round {round_number}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
            times[stage].append(seconds)
            print(f"round {round_number}: {stage} {seconds:.1f} s", flush=True)
    after = snapshot(args.workdir)
    files = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    names = stale(args.workdir)

    rows = summary(times)
    report = {
        "machine": describe(),
        "commit": commit,
        "rounds": args.rounds,
        "stages": rows,
        "changed_files": files,
        "changed_stages": names,
    }
    write_json(args.out.with_suffix(".json"), report)
    outcome = (
        "Afterwards every file git tracks in the clone (`dvc.lock` included) had the bytes it had before and `dvc status` named no stage:"
        " every rerun wrote the same results."
        if not files and not names
        else f"Afterwards the clone had changed: files {', '.join(files) or 'none'}; stages dvc status names: {', '.join(names) or 'none'}."
    )
    lines = [
        "# The short stages, each run alone",
        "",
        f"Machine: {report['machine']}.",
        f"Command: `python -m benchmarks.short_stages --workdir <clone> --rounds {args.rounds}`: in a clone of {commit[:7]} whose",
        "pipeline is up to date, each stage rerun with `dvc repro -f -s` (DVC's own start-up included), round-robin.",
        "",
        "| Stage | Median (s) | Runs (s) |",
        "|---|--:|---|",
        *[f"| {row['stage']} | {row['median']:,.1f} | {', '.join(f'{value:,.1f}' for value in row['seconds'])} |" for row in rows],
        "",
        outcome,
        "",
    ]
    write_text(args.out.with_suffix(".md"), "\n".join(lines))
    print(f"report in {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
