"""The run record's environment, and the one-line warning for bf16 models on CPUs without bf16."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from stages.files import write_npz
from stages.training.environment import bf16_native, bf16_warning, cpu_flags, environment
from tests.conftest import REPO, project_env

BF16_CPU = {"avx2", "avx512f", "avx512_bf16"}


def test_bf16_is_native_only_with_the_instructions_and_no_cap_below_them() -> None:
    assert bf16_native(BF16_CPU, cap=None)
    assert bf16_native(BF16_CPU, cap="AVX512_CORE_AMX")
    assert not bf16_native(BF16_CPU, cap="AVX2")
    assert not bf16_native(BF16_CPU, cap="AVX512_CORE")
    assert not bf16_native({"avx2", "fma"}, cap=None)
    assert bf16_native({"amx_bf16"}, cap="ALL")


def test_the_warning_is_for_bf16_models_without_bf16() -> None:
    assert bf16_warning("float32", {"avx2"}, None) is None
    assert bf16_warning("mixed_bfloat16", BF16_CPU, None) is None
    capped = bf16_warning("mixed_bfloat16", BF16_CPU, "AVX2")
    assert capped is not None and "oneDNN is capped at AVX2" in capped and "\n" not in capped
    assert "slower than float32" in capped and "`precision: float32` trains faster but gives results that differ" in capped
    bare = bf16_warning("mixed_bfloat16", {"avx2"}, None)
    assert bare is not None and "this CPU has no bf16 instructions" in bare


def test_the_record_names_versions_platform_and_cpu_features() -> None:
    record = environment()
    assert record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(record["packages"]) == {"tensorflow", "keras", "numpy", "dvc", "dvclive"} and all(record["packages"].values())
    assert record["bf16_instructions"] == bf16_native()
    assert set(record["cpu_flags"]) <= cpu_flags()
    json.dumps(record)  # it goes into a committed JSON file


def test_a_bf16_training_stage_with_the_isa_capped_prints_the_warning_once(tmp_path: Path) -> None:
    """Capped with oneDNN's documented variable, not by faking the CPU's flags."""
    params = (REPO / "params.yaml").read_text().replace("epochs: 20", "epochs: 1")
    (tmp_path / "params.yaml").write_text(params)
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        write_npz(tmp_path / "data" / f"{split}.npz", {"x": rng.random((140, 28, 28, 1), dtype=np.float32), "y": rng.integers(0, 10, 140)})
    env = {**project_env(), "PYTHONPATH": str(REPO), "ONEDNN_MAX_CPU_ISA": "AVX2"}
    command = [sys.executable, "-m", "stages", "train", "model1", "--data", "data", "--model", "m.keras", "--log", "log", "--record", "run.json"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: model1: mixed_bfloat16 without bf16 hardware")]
    assert len(warnings) == 1, result.stdout
    assert ("oneDNN is capped at AVX2" in warnings[0]) or not bf16_native(cap="ALL")
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["environment"]["onednn_isa_cap"] == "AVX2" and record["environment"]["bf16_instructions"] is False
    assert os.path.getsize(tmp_path / "m.keras") > 0
