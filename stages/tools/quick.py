"""Every stage of the pipeline on a slice of MNIST, in minutes, as a DVC experiment: `python -m stages.tools.quick`.

    python -m stages.tools.quick                                   # the quick run, named `quick`
    python -m stages.tools.quick --name lr05 -S models.model2.optimizer.learning_rate=0.5

It runs `dvc exp run --temp` with the slice's settings as `-S` overrides (QUICK below: a few thousand
images, one epoch, the main seed and one replica), in a temporary copy of the project: the workspace,
`params.yaml` and the committed results stay as they were, and the experiment's results live in its
git ref, listed by `dvc exp show`. At the end it prints the experiment's summary table and the commands
that read its report and drop it. Extra `-S` overrides go to `dvc exp run` too; one of a QUICK key replaces it.
Nothing here is a stage's dep: the stages run exactly as `dvc repro` runs them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

# The slice, chosen from measurements (reports/benchmarks/quick_run.md): most of a stage is start-up
# (TensorFlow's import, tracing, DVC), so halving the training images saved 0.6 of 6.8 minutes; one
# epoch; two seeds, the fewest the seed statistics take (ablations.seeds must be the main and replica seeds).
QUICK = {
    "prepare.train_size": "2000",
    "prepare.test_size": "500",
    "train.epochs": "1",
    "replicas.seeds": "[1]",
    "ablations.seeds": "[0,1]",
}


class QuickError(Exception):
    """A problem the user can fix: one line, exit status 1, nothing run."""


def git(root: Path, *arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def dvc_command() -> str:
    """The `dvc` of this environment, so the quick run uses the same packages as the stages."""
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else "dvc"


def experiment_ref(root: Path, name: str) -> str:
    """The git ref DVC keeps an experiment of this baseline (HEAD) under."""
    head = git(root, "rev-parse", "HEAD")
    return f"refs/exps/{head[:2]}/{head[2:]}/{name}"


def settings(overrides: list[str]) -> dict[str, str]:
    """QUICK with `KEY=VALUE` overrides on top (an override of a QUICK key replaces it)."""
    merged = dict(QUICK)
    for override in overrides:
        key, equals, value = override.partition("=")
        if not equals or not key:
            raise QuickError(f"-S {override!r}: expected KEY=VALUE, as for `dvc exp run -S`")
        merged[key] = value
    return merged


def command(name: str, chosen: dict[str, str]) -> list[str]:
    return [dvc_command(), "exp", "run", "--temp", "--name", name, *[part for key, value in chosen.items() for part in ("-S", f"{key}={value}")]]


def preflight(root: Path, name: str) -> None:
    if not (root / "dvc.yaml").is_file():
        raise QuickError(f"no dvc.yaml in {root}: run this from the project's root")
    try:
        git(root, "rev-parse", "--verify", "HEAD")
    except subprocess.CalledProcessError:
        raise QuickError(f"{root} has no commit yet: a DVC experiment starts from one") from None
    if git(root, "for-each-ref", experiment_ref(root, name)):
        raise QuickError(f"an experiment named {name!r} of this commit exists: `dvc exp remove {name}` drops it, or pass --name")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.tools.quick", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="quick", help="the experiment's name (default: quick)")
    parser.add_argument(
        "-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="another params.yaml override, as for `dvc exp run -S`"
    )
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        chosen = settings(args.overrides)
        preflight(root, args.name)
    except QuickError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    listed = ", ".join(f"{key}={value}" for key, value in chosen.items())
    print(f"quick run {args.name!r}: every stage on a slice ({listed}), in a temporary copy", flush=True)
    result = subprocess.run(command(args.name, chosen), cwd=root)
    if result.returncode != 0:
        print(f"error: the quick run failed (dvc exp run exited {result.returncode}); the workspace is as it was", file=sys.stderr)
        return 1
    minutes = (time.perf_counter() - started) / 60
    ref = experiment_ref(root, args.name)
    print(f"\nquick run {args.name!r} finished in {minutes:.1f} minutes. Its summary (one epoch on a slice: a smoke test, not a result):\n")
    print(git(root, "show", f"{ref}:reports/summary.md"))
    print(
        "\nNext:\n"
        "  dvc exp show --drop '.*' --keep 'Experiment|.*\\.acc$'   # each model's test accuracy (main run), beside main's\n"
        f"  git show {ref}:reports/report.md | less   # its whole report\n"
        f"  dvc exp remove {args.name}   # drop it (the workspace never changed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
