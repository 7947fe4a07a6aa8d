"""Shared fixtures: a throwaway git copy of the project with the real pipeline run on a slice.

The end-to-end fixture copies the files git tracks into a temporary directory, makes it a git
repository of its own, sets a small slice (`prepare.train_size`, `prepare.test_size`) and one
epoch in its `params.yaml`, and runs the real `dvc repro` there once per test run, shared by the
pytest-xdist workers (pyproject.toml runs two).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from filelock import FileLock

from stages.params.base import read_yaml
from stages.params.numerics import Numerics
from stages.params.report import Better, ClaimModels, ReportParams
from stages.params.training import ModelSpec, TrainSettings

if TYPE_CHECKING:
    from stages.training.fit import TrainingJob

REPO = Path(__file__).resolve().parents[1]
# The models params.yaml declares: a new model needs no edit to the tests.
MODELS = tuple(read_yaml((REPO / "params.yaml").read_text())["models"])
ABLATIONS = tuple(read_yaml((REPO / "params.yaml").read_text())["ablations"]["models"])
# The numerics params.yaml pins, for tests that fit in-process.
NUMERICS = Numerics.model_validate(read_yaml((REPO / "params.yaml").read_text())["numerics"])
# Small enough that a stage is mostly start-up; the models do not learn on it (see test_pipeline.py).
SLICE = {"train_size": 1400, "test_size": 400}
# Where `run_slice` records what it saw of the quick run, beside the project it builds.
QUICK_RUN_FACTS = "quick-run.json"
# Two seeds in all on the slices: the main run's (0) and one replica.
TWO_SEEDS = {"replicas": {"seeds": [1]}, "ablations": {"seeds": [0, 1]}}
# Report rules for tests of the report's pure functions: params.yaml's thresholds, 10 sample digits.
REPORT_RULES = ReportParams(
    significance_level=0.05,
    families="per_claim",
    failure_test="boschloo",
    combine_seeds="stouffer",
    min_accuracy_difference=0.001,
    min_loss_difference=0.005,
    convergence_window=3,
    min_convergence_difference=0.01,
    min_train_loss_difference=0.01,
    convergence_accuracy=0.98,
    overfit_window=5,
    overfit_significance=0.05,
    overfit_slope_bound=0.0002,
    landscape_tolerance=1e-5,
    chance_accuracy=0.2,
    power_target=0.8,
    power_max_seeds=200,
    simulations=1000,
    simulation_seed=0,
    sample_digits=10,
    misclassified_digits=10,
    claims=ClaimModels(
        overfits="model1",
        better=Better(model="model2", than=["model3"]),
        stuck="model3",
        faster_convergence=Better(model="model4", than=["model4_glorot"]),
        best="model4",
        best_optimizer=Better(model="model2_adam", than=["model2", "model3"]),
    ),
)
# The stages `prepared_slice` has run.
DATA = ("download", "prepare")
# The fixtures built on the slice run; a test that uses neither needs no slice run.
SLICE_RUN = {"pipeline_run", "workflow_base"}
# Modules whose tests share a module-scoped fixture built on the slice run (a clone with its remote
# and server, a reference run): their tests stay on one worker so that fixture is built once.
SHARED_MODULE_FIXTURES = {"test_clients.py", "test_cluster.py", "test_remote.py"}
GIT_IDENTITY = ["-c", "user.name=Pipeline Tests", "-c", "user.email=tests@example.invalid"]


def training_job(spec: ModelSpec, settings: TrainSettings, log_dir: Path) -> TrainingJob:
    """An in-process fit's job: `spec` at `settings`, its DVCLive log in `log_dir` (the other paths are unused by `fit`)."""
    from stages.training.fit import TrainingJob  # TensorFlow, only for the tests that fit

    return TrainingJob(spec, settings, NUMERICS, "train", log_dir.parent / "data", log_dir, log_dir.parent / "run.json")


def project_env() -> dict[str, str]:
    """Environment in which `dvc` and the stages' `python` are this interpreter's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    # `dvc exp` commits experiments with git; CI machines have no identity configured.
    for role in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{role}_NAME", "Pipeline Tests")
        env.setdefault(f"GIT_{role}_EMAIL", "tests@example.invalid")
    return env


def run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=project_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(*arguments: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(Path(sys.executable).parent / "dvc"), *arguments], cwd, check)


def git(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(["git", *GIT_IDENTITY, *arguments], cwd)


def copy_project(destination: Path) -> Path:
    """Copy the tracked files of this checkout into a new git repository at `destination`."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, tracked):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git("init", "-q", "-b", "main", cwd=destination)
    return destination


def edit_params(project: Path, **sections: dict) -> None:
    path = project / "params.yaml"
    params = read_yaml(path.read_text())
    for section, values in sections.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def float32_everywhere(project: Path) -> None:
    """Every model in float32: slices test the pipeline, and on a CPU without bf16 instructions
    emulated bf16 trains about 8x slower (reports/benchmarks/bf16_emulation.md)."""
    path = project / "params.yaml"
    params = read_yaml(path.read_text())
    for model in params["models"].values():
        model["precision"] = "float32"
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def ran_stages(output: str) -> set[str]:
    """Stages `dvc repro` / `dvc exp run` actually ran (not those restored from the run-cache)."""
    return set(re.findall(r"^Running stage '([^']+)'", output, flags=re.MULTILINE))


def cached_outputs(project: Path) -> dict[str, str]:
    """The outputs DVC keeps in its cache (data, models; the rest is in git), with their `dvc.lock` MD5."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    in_git = run(["git", "ls-files"], project).stdout.splitlines()

    def cached(path: str) -> bool:
        return not any(name == path or name.startswith(f"{path}/") for name in in_git)

    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", []) if cached(out["path"])}


def clone_project(source: Path, destination: Path, *stages: str) -> Path:
    """A user's fresh clone of `source`, with a copy of its DVC cache and the outputs checked out
    (those of `stages` only, if named: where the others were never run)."""
    run(["git", "clone", "-q", str(source), str(destination)], destination.parent)
    shutil.copytree(source / ".dvc" / "cache", destination / ".dvc" / "cache", dirs_exist_ok=True)
    dvc("checkout", "-q", *stages, cwd=destination)
    return destination


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Groups for pytest-xdist's `--dist loadgroup` (pyproject.toml); other tests go one at a time
    to whichever worker is free.

    - "no-slice-run": every test that needs no slice run (`raw_mnist` and `prepared_slice` are enough
      for the tests that train one model). xdist hands out the largest group first, so one worker
      takes these while the other starts the slice run at once, instead of both waiting for it.
    - one group per module of SHARED_MODULE_FIXTURES, so each module fixture is built once.
    - one group per other Python of test_pythons.py, so each venv is built once, on either worker;
      test_platforms.py's tests in no group (they need no data), to balance the two workers.
    A wrapper, so the marks are set before xdist reads them in its own hook of the same name.
    """
    for item in items:
        if item.path.name == "test_pythons.py" and hasattr(item, "callspec"):
            item.add_marker(pytest.mark.xdist_group(f"python-{item.callspec.params['venv']}"))
        elif item.path.name == "test_platforms.py":
            pass  # index dry runs, no data: each test to whichever worker is free
        elif not SLICE_RUN & set(item.fixturenames):
            item.add_marker(pytest.mark.xdist_group("no-slice-run"))
        elif item.path.name in SHARED_MODULE_FIXTURES:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    return (yield)


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """The path `build` fills, built once per test run and shared.

    Under pytest-xdist each worker is a session of its own: the first to ask builds it in the
    directory the workers share, the others wait on a file lock and use it, or fail with its error.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the workers' basetemps are popen-gw0, popen-gw1... under one directory
    root = shared / name
    result, done, failed = root / "result", root / "done", root / "failed"
    with FileLock(shared / f"{name}.lock"):
        if failed.exists():
            raise AssertionError(f"building {name} failed in another pytest-xdist worker:\n{failed.read_text()}")
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # what a worker killed while building left
            root.mkdir()
            try:
                build(result)
            except BaseException as error:
                failed.write_text(str(error))
                raise
            done.touch()
    return result


def slice_project(destination: Path, prepare: dict = SLICE, **sections: dict) -> Path:
    """A committed copy of the project set to `prepare`'s sizes, one epoch and every model in
    float32, with `sections` edited into its params.yaml; nothing run."""
    project = copy_project(destination)
    # The committed dvc.lock records the full run at every declared seed; DVC keeps the entries of
    # stages a params edit removes, so a slice run starts without it and locks exactly its stages.
    (project / "dvc.lock").unlink()
    edit_params(project, prepare=prepare, train={"epochs": 1}, **sections)
    float32_everywhere(project)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "slice params", cwd=project)
    return project


def quick_run_facts(pipeline_run: Path) -> dict:
    """What `run_slice` saw of the quick run before applying it: its output, `git status`, `dvc exp list`."""
    return json.loads((pipeline_run.parent / QUICK_RUN_FACTS).read_text())


def run_slice(destination: Path) -> Path:
    """Copy the project to `destination`, set the slice, run the quick run on it as a user does
    (`python -m stages.tools.quick`, with the test slice's sizes), record what a user is promised (a clean
    `git status`, the experiment listed), then apply the experiment and commit it: one slice run serves the
    quick run's test and every test of the pipeline's results."""
    project = slice_project(destination, **TWO_SEEDS)
    sizes = [part for key, value in SLICE.items() for part in ("-S", f"prepare.{key}={value}")]
    output = run([sys.executable, "-m", "stages.tools.quick", *sizes], project).stdout
    facts = {
        "output": output,
        "git_status": run(["git", "status", "--porcelain"], project).stdout,
        "experiments": dvc("exp", "list", "--name-only", cwd=project).stdout.split(),
    }
    (destination.parent / QUICK_RUN_FACTS).write_text(json.dumps(facts))
    dvc("exp", "apply", "quick", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "slice run", cwd=project)
    return project


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy after a full `dvc repro` on the slice with one epoch, committed on branch main.

    One run serves both the end-to-end checks (read-only) and the workflow tests, which clone it and
    work as users do: a second slice run for them took about 6 of CI's minutes.
    """
    return build_once(tmp_path_factory, "pipeline", run_slice)


@pytest.fixture(scope="session")
def raw_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with MNIST as the download stage writes it (mnist.npz, provenance.json), for tests
    that need the data but not the slice run, so that they can run while it is being built."""

    def download(folder: Path) -> None:
        folder.mkdir()
        run([sys.executable, "-m", "stages", "download", "--out", str(folder / "mnist.npz"), "--provenance", str(folder / "provenance.json")], REPO)

    return build_once(tmp_path_factory, "raw-mnist", download)


def local_project(destination: Path, raw: Path, prepare: dict = SLICE) -> Path:
    """A `slice_project` whose download stage reads `raw` instead of downloading."""
    return slice_project(destination, prepare, download={"sources": ["local"], "local_file": str(raw)})


@pytest.fixture(scope="session")
def prepared_slice(tmp_path_factory: pytest.TempPathFactory, raw_mnist: Path) -> Path:
    """A `local_project` on the slice with download and prepare run and committed: for tests that
    train one model and need no slice run. Clone it with `clone_project(prepared_slice, ..., *DATA)`."""

    def build(project: Path) -> None:
        local_project(project, raw_mnist / "mnist.npz")
        dvc("repro", "-q", "prepare", cwd=project)
        git("add", "-A", cwd=project)
        git("commit", "-qm", "prepared slice", cwd=project)

    return build_once(tmp_path_factory, "prepared-slice", build)


@pytest.fixture(scope="session")
def workflow_base(pipeline_run: Path) -> Path:
    """The committed slice run, for tests that clone it (the name says how they use it)."""
    return pipeline_run
