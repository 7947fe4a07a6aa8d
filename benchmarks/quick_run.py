"""Wall time of the quick run (`python -m stages.tools.quick`) in a fresh clone, stage by stage.

    python -m benchmarks.quick_run --workdir /tmp/quick-run     # writes reports/benchmarks/quick_run.{json,md}

It clones HEAD into `--workdir` (no DVC cache, so `download` fetches MNIST as a new user's first run does),
runs the quick run there, stamps each stage's start as DVC prints it, and checks what a user is promised:
`git status` is clean afterwards and `dvc exp list` names the experiment; then it applies the experiment
(the clone is throwaway) to list the stages of its pipeline that did not run, their results being current. The target is
5 minutes on a 2-core machine, install excluded. Extra `-S KEY=VALUE` overrides go to the quick run (to
measure another slice); the report names them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmarks.machine import cpu_id, describe, run_stamped
from stages.files import write_json, write_text
from stages.tools.quick import QUICK

TARGET_MINUTES = 5.0


def kind(stage: str) -> str:
    return stage.split("@", 1)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quick_run")
    parser.add_argument("--workdir", type=Path, required=True, help="where to clone the repository (must not exist)")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/quick_run"))
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="another override for the quick run")
    args = parser.parse_args(argv)
    if args.workdir.exists():
        parser.error(f"--workdir {args.workdir} exists; give a new directory")

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", ".", str(args.workdir)], check=True)
    quick = [sys.executable, "-m", "stages.tools.quick", *[part for override in args.overrides for part in ("-S", override)]]
    seconds, stages, status = run_stamped(quick, args.workdir)
    if status != 0:
        sys.exit(f"the quick run failed with exit status {status} in {args.workdir}")

    dvc = str(Path(sys.executable).parent / "dvc")
    status_after = subprocess.run(["git", "status", "--porcelain"], cwd=args.workdir, capture_output=True, text=True, check=True).stdout
    experiments = subprocess.run([dvc, "exp", "list", "--name-only"], cwd=args.workdir, capture_output=True, text=True, check=True).stdout.split()
    # The experiment's own pipeline (its params declare fewer seeds than HEAD's): applied in this throwaway clone.
    subprocess.run([dvc, "exp", "apply", "quick"], cwd=args.workdir, capture_output=True, text=True, check=True)
    declared = subprocess.run([dvc, "stage", "list", "--name-only"], cwd=args.workdir, capture_output=True, text=True, check=True).stdout.split()
    by_kind: dict[str, float] = {}
    for stage in stages:
        by_kind[kind(stage["stage"])] = round(by_kind.get(kind(stage["stage"]), 0.0) + stage["seconds"], 1)
    report = {
        "machine": describe(),
        "cpu_id": cpu_id(),
        "commit": commit,
        "settings": {**QUICK, **dict(override.split("=", 1) for override in args.overrides)},
        "seconds": round(seconds, 1),
        "minutes": round(seconds / 60, 2),
        "target_minutes": TARGET_MINUTES,
        "stages_run": len(stages),
        "stage_kinds_run": sorted(by_kind),
        "not_run": sorted(set(declared) - {stage["stage"] for stage in stages}),
        "seconds_by_kind": by_kind,
        "stages": stages,
        "git_status_clean": status_after == "",
        "experiment_listed": "quick" in experiments,
    }
    write_json(args.out.with_suffix(".json"), report)
    met = "met" if report["minutes"] <= TARGET_MINUTES else "**missed**"
    lines = [
        "# The quick run, end to end",
        "",
        f"**{report['minutes']:.1f} minutes** ({report['seconds']:,.0f} s) for {len(stages)} stages; the {TARGET_MINUTES:g}-minute target is {met}.",
        "",
        f"Machine: {report['machine']} ({report['cpu_id'] or 'no family/model'}).",
        f"Command: `python -m benchmarks.quick_run --workdir <new directory>`: a fresh clone of {commit[:7]} with no DVC cache, then",
        "`python -m stages.tools.quick` there (`dvc exp run --temp` with "
        + ", ".join(f"`{key}={value}`" for key, value in report["settings"].items())
        + "), `download` included.",
        "",
        f"- stages run: {', '.join(report['stage_kinds_run'])}; not run, their results current: {', '.join(report['not_run']) or 'none'}",
        f"- `git status` clean afterwards: {'yes' if report['git_status_clean'] else '**no**'}",
        f"- `dvc exp list` names `quick`: {'yes' if report['experiment_listed'] else '**no**'}",
        "",
        "| Stage kind | Stages | Seconds |",
        "|---|--:|--:|",
        *[f"| {name} | {sum(kind(stage['stage']) == name for stage in stages)} | {total:,.1f} |" for name, total in by_kind.items()],
        "",
        "A stage's seconds run from DVC's line announcing it to the next one's, so they include DVC's own work around it.",
        "",
        "| Stage | Seconds |",
        "|---|--:|",
        *[f"| {stage['stage']} | {stage['seconds']:,.1f} |" for stage in stages],
        "",
    ]
    write_text(args.out.with_suffix(".md"), "\n".join(lines))
    print(f"{report['minutes']:.1f} minutes; report in {args.out.with_suffix('.md')}; clone kept in {args.workdir}")


if __name__ == "__main__":
    main()
