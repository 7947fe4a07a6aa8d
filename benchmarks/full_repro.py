"""Wall time of the full default pipeline, end to end, as a new user runs it.

    python -m benchmarks.full_repro --workdir /tmp/full-run    # writes reports/benchmarks/full_repro.{json,md}

It clones the committed state of this repository (HEAD) into `--workdir`, with no DVC cache, and
runs `dvc repro` there: download, prepare, the four trainings, evaluations, plots and the report;
the report also lists the stages that did not run (the committed seed replicas and ablations).
Each stage's start is stamped as DVC prints it. The clone is kept, so its `dvc.lock`, reports and
cache can be inspected or copied back.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmarks.machine import describe, run_stamped
from stages.files import write_json, write_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.full_repro")
    parser.add_argument("--workdir", type=Path, required=True, help="where to clone the repository (must not exist)")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/full_repro"))
    args = parser.parse_args(argv)
    if args.workdir.exists():
        parser.error(f"--workdir {args.workdir} exists; give a new directory")

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", ".", str(args.workdir)], check=True)
    dvc = str(Path(sys.executable).parent / "dvc")
    seconds, stages, status = run_stamped([dvc, "repro"], args.workdir)
    if status != 0:
        sys.exit(f"dvc repro failed with exit status {status} in {args.workdir}")

    # Stages that did not run: those whose committed results are current (seed replicas, ablations).
    declared = subprocess.run([dvc, "stage", "list", "--name-only"], cwd=args.workdir, capture_output=True, text=True, check=True).stdout.split()
    ran = {stage["stage"] for stage in stages}
    skipped = [name for name in declared if name not in ran]
    report = {
        "machine": describe(),
        "commit": commit,
        "seconds": round(seconds, 1),
        "minutes": round(seconds / 60, 1),
        "stages": stages,
        "not_run": skipped,
    }
    write_json(args.out.with_suffix(".json"), report)
    lines = [
        "# Full pipeline, end to end",
        "",
        f"Machine: {report['machine']}.",
        f"Command: `python -m benchmarks.full_repro --workdir <new directory>` (a fresh clone of {commit[:7]}, no DVC cache, `dvc repro`).",
        "",
        f"Total: **{report['minutes']} minutes** ({report['seconds']:,.0f} s).",
        "",
        "| Stage | Seconds |",
        "|---|--:|",
        *[f"| {stage['stage']} | {stage['seconds']:,.1f} |" for stage in stages],
        "",
        f"Not run, their committed results being current ({len(skipped)}): {', '.join(skipped) or 'none'}.",
        "",
    ]
    write_text(args.out.with_suffix(".md"), "\n".join(lines))
    print(f"{report['minutes']} minutes; report in {args.out.with_suffix('.md')}; clone kept in {args.workdir}")


if __name__ == "__main__":
    main()
