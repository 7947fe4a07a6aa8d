"""The other Pythons of pyproject.toml's range, really run: a venv of each gets the runtime lock as the
README installs it (the hashed build lock, then the lock with --no-build-isolation; with uv, whose
downloads are parallel, instead of pip), then `python -m stages check`, the fingerprint against
reports/fingerprint.json (so a Python upgrade that moves the bytes is seen) and a one-stage slice
`dvc repro`. CI runs them (this machine's pyenv has 3.12 and 3.13); where an interpreter is missing
they fail under CI and are skipped elsewhere, saying how to get it."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stages.__main__ import python_range
from tests.conftest import DATA, REPO, clone_project

(MAJOR, LOW), (_, HIGH) = python_range()
OTHERS = [f"{MAJOR}.{minor}" for minor in range(LOW, HIGH) if (MAJOR, minor) != sys.version_info[:2]]


def interpreter(version: str) -> str | None:
    """`python<version>` on PATH if it runs (a pyenv shim may not), else pyenv's own copy."""
    candidates = [shutil.which(f"python{version}")]
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import venv"], capture_output=True).returncode == 0:
            return candidate
    return None


def required_interpreter(version: str) -> str:
    """The interpreter, or: fail under CI (this machine's pyenv has it), skip elsewhere saying how to get it."""
    python = interpreter(version)
    if python is None:
        message = f"no Python {version} here: install it (`pyenv install {version}`, or your system's python{version}) to run this check"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module", params=OTHERS)
def venv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    version = request.param
    python = required_interpreter(version)
    folder = tmp_path_factory.mktemp(f"venv-{version}")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run([python, "-m", "venv", str(folder)], REPO, env)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    target = ["--python", str(folder / "bin" / "python")]
    run([uv, "pip", "install", "-q", "--require-hashes", *target, "-r", "requirements-build.txt"], REPO, env)
    run([uv, "pip", "install", "-q", "--require-hashes", "--no-build-isolation", *target, "-r", "requirements.txt"], REPO, env)
    return version, folder


def venv_env(folder: Path) -> dict[str, str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    # pip, as the README installs, compiles every module's bytecode; uv does not. Under
    # PYTHONDONTWRITEBYTECODE (set on our CI machine) each process would compile TensorFlow's and DVC's
    # modules again: the first import writes them instead, as in a venv made by pip.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def test_the_stages_check_runs(venv: tuple[str, Path]) -> None:
    version, folder = venv
    result = run([str(folder / "bin" / "python"), "-m", "stages", "check"], REPO, venv_env(folder))
    assert result.stdout.startswith("params.yaml: OK (6 models"), result.stdout
    probe = run([str(folder / "bin" / "python"), "-c", "import sys; print(sys.version)"], REPO, venv_env(folder))
    assert probe.stdout.startswith(version + ".")


def test_the_fingerprint_matches_the_committed_digests(venv: tuple[str, Path], raw_mnist: Path) -> None:
    """If this fails, this Python computes other bytes than 3.11: say so in reports/benchmarks/portability.md."""
    _, folder = venv
    command = [str(folder / "bin" / "python"), "-m", "stages", "fingerprint", "--raw", str(raw_mnist / "mnist.npz")]
    result = run(command, REPO, venv_env(folder))
    committed = json.loads((REPO / "reports" / "fingerprint.json").read_text())
    # The digests of the reference CPU, or of the recorded CPU this one is (3.11 on this machine gives the same).
    matched = [
        recorded
        for recorded in [committed, *committed.get("other_cpus", [])]
        if all(f"{name:<14s} weights {d['weights']}  predictions {d['predictions']}" in result.stdout for name, d in recorded["models"].items())
    ]
    assert len(matched) == 1, result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("every digest matches "), result.stdout


def test_a_slice_stage_reproduces(venv: tuple[str, Path], prepared_slice: Path, tmp_path: Path) -> None:
    version, folder = venv
    project = clone_project(prepared_slice, tmp_path / "project", *DATA)
    env = venv_env(folder)
    dvc = str(folder / "bin" / "dvc")
    result = run([dvc, "repro", "-s", "train@model2"], project, env)
    assert "Running stage 'train@model2'" in result.stdout
    record = json.loads((project / "reports" / "runs" / "train" / "model2.json").read_text())
    assert record["environment"]["python"].startswith(version + ".")
    assert (project / "models" / "model2.keras").is_file()
    status = run([dvc, "status", "train@model2"], project, env)
    assert "Data and pipelines are up to date." in status.stdout


def test_a_python_outside_the_range_stops_at_once_writing_nothing(tmp_path: Path) -> None:
    """A real interpreter below the range (3.10 here: no project package importable there) gets the one
    line and exit 1 before any project import, read or write."""
    version = f"{MAJOR}.{LOW - 1}"
    python = required_interpreter(version)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VIRTUAL_ENV", None)
    out = tmp_path / "raw.npz"
    command = [python, "-m", "stages", "download", "--out", str(out), "--provenance", str(tmp_path / "provenance.json")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: this project's locks (requirements.txt, requirements-dev.txt) are for Python >={MAJOR}.{LOW},<{MAJOR}.{HIGH}")
    assert f"this is Python {version}." in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
