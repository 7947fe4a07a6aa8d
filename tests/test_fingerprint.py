"""The fingerprint: this machine computes the digests reports/fingerprint.json records (the reference
CPU's, the committed runs' bytes, or another CPU model's that a session measured), and a digest that
differs from every recorded set fails with the model, the CPU and the settings named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stages.fingerprint import differences, record
from stages.training.environment import read_cpu
from tests.conftest import REPO, project_env

COMMITTED = REPO / "reports" / "fingerprint.json"


def fingerprint(raw: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "stages", "fingerprint", "--raw", str(raw / "mnist.npz"), *arguments]
    return subprocess.run(command, cwd=REPO, env=project_env(), capture_output=True, text=True, timeout=900)


def printed(result: subprocess.CompletedProcess, models: dict) -> bool:
    return all(f"{name:<14s} weights {digests['weights']}  predictions {digests['predictions']}" in result.stdout for name, digests in models.items())


def test_this_machine_gives_digests_the_committed_file_records(raw_mnist: Path) -> None:
    """If this fails on a new CPU, that CPU computes other bytes: record them (`python -m stages fingerprint
    --record`), add its rows to reports/benchmarks/portability.md (`python -m benchmarks.portability`) and say so
    in the README."""
    result = fingerprint(raw_mnist)
    assert result.returncode == 0, result.stdout + result.stderr
    committed = json.loads(COMMITTED.read_text())
    last = result.stdout.rstrip().splitlines()[-1]
    if printed(result, committed["models"]):
        assert last.endswith("every digest matches reports/fingerprint.json: this machine computes the committed bytes on these batches")
        return
    matched = [other for other in committed.get("other_cpus", []) if printed(result, other["models"])]
    assert len(matched) == 1, result.stdout
    same = [name for name, digests in matched[0]["models"].items() if all(digests[key] == committed["models"][name][key] for key in ("weights", "predictions"))]
    assert f"records for {matched[0]['environment']['cpu']}: on this CPU {', '.join(same)} give" in last, last
    assert "other bytes" in last and "Traceback" not in result.stdout + result.stderr


def test_a_changed_digest_fails_naming_the_model_the_cpu_and_the_settings(raw_mnist: Path, tmp_path: Path) -> None:
    committed = json.loads(COMMITTED.read_text())
    for digests in [committed, *committed.get("other_cpus", [])]:
        digests["models"]["model2"]["weights"] = "0123456789abcdef"
    doctored = tmp_path / "fingerprint.json"
    doctored.write_text(json.dumps(committed))
    result = fingerprint(raw_mnist, "--expected", str(doctored), "--models", "model2")
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stdout.splitlines()[-1]
    assert error.startswith(f"error: this machine computes other bytes than {doctored} ({committed['environment']['cpu']})"), error
    assert ": model2 weights " in error and "expected 0123456789abcdef" in error
    assert f"Here: {read_cpu().model} ({read_cpu().machine}), oneDNN on, ISA AVX2" in error
    assert "Traceback" not in result.stdout + result.stderr


def test_digests_recorded_for_another_cpu_pass_naming_it_and_what_differs(raw_mnist: Path, tmp_path: Path) -> None:
    # This machine's own model2 and model3 digests (2 batches) recorded as another CPU's, and the reference's model2
    # moved: the command passes, names the recorded CPU, and says model3 gives the committed bytes and model2 not.
    doctored = tmp_path / "fingerprint.json"
    piece = ("--expected", str(doctored), "--models", "model2,model3", "--steps", "2")
    assert fingerprint(raw_mnist, *piece, "--update").returncode == 0
    measured = json.loads(doctored.read_text())
    doctored.write_text(
        json.dumps(
            measured
            | {
                "models": measured["models"] | {"model2": {"weights": "0" * 16, "predictions": "1" * 16}},
                "other_cpus": [{"environment": {"cpu": "A CPU of a session"}, "models": measured["models"]}],
            }
        )
    )
    result = fingerprint(raw_mnist, *piece)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == (
        f"every digest matches those {doctored} records for A CPU of a session: on this CPU model3 gives the committed bytes and "
        "model2 other bytes, so a `dvc repro` of its stages gives other results than the committed ones (how far: reports/benchmarks/portability.md)"
    )


def test_record_adds_a_cpu_once_and_never_the_reference(tmp_path: Path) -> None:
    committed = json.loads(COMMITTED.read_text())
    committed.pop("other_cpus", None)
    path = tmp_path / "fingerprint.json"
    path.write_text(json.dumps(committed))
    record(path, committed, {"environment": {"cpu": "the reference again"}, "models": committed["models"]})
    assert "other_cpus" not in json.loads(path.read_text())
    moved = {**committed["models"], "model2": {"weights": "0123456789abcdef", "predictions": "fedcba9876543210", "loss": 2.5}}
    for cpu in ("Another CPU", "Another CPU, measured again"):
        record(path, json.loads(path.read_text()), {"environment": {"cpu": cpu}, "models": moved})
    assert json.loads(path.read_text())["other_cpus"] == [{"environment": {"cpu": "Another CPU, measured again"}, "models": moved}]
    assert json.loads(path.read_text())["models"] == committed["models"]


def test_record_refuses_a_piece_of_the_models(raw_mnist: Path) -> None:
    refused = fingerprint(raw_mnist, "--record", "--models", "model2")
    assert refused.returncode == 1 and "--record adds every declared model's digests" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


def test_differences_name_each_digest_that_moved_and_each_model_never_fingerprinted() -> None:
    expected = {"model1": {"weights": "a", "predictions": "b"}, "model2": {"weights": "c", "predictions": "d"}}
    found = {"model1": {"weights": "a", "predictions": "B"}, "model2": {"weights": "c", "predictions": "d"}, "model9": {"weights": "e", "predictions": "f"}}
    assert differences(found, expected) == ["model1 predictions B, expected b", "model9: no committed digest"]
    assert differences(expected, expected) == []
