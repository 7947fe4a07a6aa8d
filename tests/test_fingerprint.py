"""The fingerprint: this machine computes the committed bytes under the pinned numerics, and a digest
that differs fails with the model, the CPU and the settings named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stages.fingerprint import differences
from stages.training.environment import read_cpu
from tests.conftest import REPO, project_env

COMMITTED = REPO / "reports" / "fingerprint.json"


def fingerprint(raw: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "stages", "fingerprint", "--raw", str(raw / "mnist.npz"), *arguments]
    return subprocess.run(command, cwd=REPO, env=project_env(), capture_output=True, text=True, timeout=900)


def test_this_machine_gives_the_committed_digests(raw_mnist: Path) -> None:
    """If this fails on a new CPU, that CPU computes other bytes: add its row to
    reports/benchmarks/portability.md (`python -m benchmarks.portability`) and say so in the README."""
    result = fingerprint(raw_mnist)
    assert result.returncode == 0, result.stdout + result.stderr
    committed = json.loads(COMMITTED.read_text())
    for name, digests in committed["models"].items():
        assert f"{name:<14s} weights {digests['weights']}  predictions {digests['predictions']}" in result.stdout
    assert result.stdout.rstrip().endswith("every digest matches reports/fingerprint.json: this machine computes the committed bytes on these batches")


def test_a_changed_digest_fails_naming_the_model_the_cpu_and_the_settings(raw_mnist: Path, tmp_path: Path) -> None:
    committed = json.loads(COMMITTED.read_text())
    committed["models"]["model2"]["weights"] = "0123456789abcdef"
    doctored = tmp_path / "fingerprint.json"
    doctored.write_text(json.dumps(committed))
    result = fingerprint(raw_mnist, "--expected", str(doctored), "--models", "model2")
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stdout.splitlines()[-1]
    assert error.startswith(f"error: this machine computes other bytes than {doctored} ({committed['environment']['cpu']}): model2 weights ")
    assert "expected 0123456789abcdef" in error and f"Here: {read_cpu().model} ({read_cpu().machine}), oneDNN on, ISA AVX2" in error
    assert "Traceback" not in result.stdout + result.stderr


def test_differences_name_each_digest_that_moved_and_each_model_never_fingerprinted() -> None:
    expected = {"model1": {"weights": "a", "predictions": "b"}, "model2": {"weights": "c", "predictions": "d"}}
    found = {"model1": {"weights": "a", "predictions": "B"}, "model2": {"weights": "c", "predictions": "d"}, "model9": {"weights": "e", "predictions": "f"}}
    assert differences(found, expected) == ["model1 predictions B, expected b", "model9: no committed digest"]
    assert differences(expected, expected) == []
