"""The pinned numerics (applied before TensorFlow starts, overriding the environment with one line), the
run record, and the one-line warnings for bf16 models without bf16 and for CPUs the pinned ISA does not fit."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from stages.data.npz import write_npz
from stages.params.numerics import ISA_FLAGS, ISA_LEVELS, Numerics
from stages.training.environment import Cpu, apply_numerics, bf16_native, bf16_warning, environment, isa_runs, read_cpu
from tests.conftest import REPO, project_env

PINNED = Numerics(intra_op_threads=2, inter_op_threads=2, onednn=True, onednn_isa="AVX2")
NATIVE = PINNED.model_copy(update={"onednn_isa": "native"})
BF16_CPU = Cpu("bf16 EPYC", frozenset({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}), "x86_64")
AVX2_CPU = Cpu("AVX2 EPYC", frozenset({"sse4_1", "avx", "avx2", "fma"}), "x86_64")
APPLE = Cpu("Apple M3", frozenset(), "arm64")


def test_bf16_is_native_only_with_onednn_the_instructions_and_a_cap_that_allows_them() -> None:
    assert bf16_native(NATIVE, BF16_CPU)
    assert bf16_native(PINNED.model_copy(update={"onednn_isa": "AVX512_CORE_BF16"}), BF16_CPU)
    assert not bf16_native(PINNED, BF16_CPU)
    assert not bf16_native(PINNED.model_copy(update={"onednn_isa": "AVX512_CORE"}), BF16_CPU)
    assert not bf16_native(NATIVE.model_copy(update={"onednn": False}), BF16_CPU)
    assert not bf16_native(NATIVE, AVX2_CPU)


def test_the_bf16_warning_says_why_in_one_line() -> None:
    assert bf16_warning("float32", PINNED, AVX2_CPU) is None
    assert bf16_warning("mixed_bfloat16", NATIVE, BF16_CPU) is None
    capped = bf16_warning("mixed_bfloat16", PINNED.model_copy(update={"onednn_isa": "AVX512_CORE"}), BF16_CPU)
    assert capped is not None and "caps oneDNN at AVX512_CORE" in capped and "\n" not in capped and "slower than float32" in capped
    assert "this CPU has no bf16 instructions" in bf16_warning("mixed_bfloat16", NATIVE, AVX2_CPU)
    assert "numerics.onednn is false" in bf16_warning("mixed_bfloat16", NATIVE.model_copy(update={"onednn": False}), BF16_CPU)


def test_an_isa_runs_where_the_cpu_has_every_flag_it_needs() -> None:
    assert isa_runs("AVX2", AVX2_CPU) and isa_runs("AVX2", BF16_CPU) and isa_runs("AVX512_CORE_BF16", BF16_CPU)
    assert not isa_runs("AVX512_CORE", AVX2_CPU) and not isa_runs("AVX512_CORE_AMX", BF16_CPU)
    assert not isa_runs("AVX2", APPLE) and not isa_runs("SSE41", Cpu("old", frozenset({"sse2"}), "x86_64"))
    assert isa_runs("native", APPLE)


def test_the_numerics_are_set_in_the_environment_and_an_override_gets_one_line() -> None:
    environ = {"ONEDNN_MAX_CPU_ISA": "avx2", "DNNL_MAX_CPU_ISA": "AVX512_CORE", "TF_NUM_INTRAOP_THREADS": "8", "PATH": "/bin"}
    lines = apply_numerics(PINNED, AVX2_CPU, environ)
    assert environ == {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "TF_ENABLE_ONEDNN_OPTS": "1",
        "TF_NUM_INTRAOP_THREADS": "2",
        "TF_NUM_INTEROP_THREADS": "2",
        "PATH": "/bin",
    }
    # The same cap in other letters is no override; another cap and another thread count are.
    assert len(lines) == 2
    assert lines[0].startswith("DNNL_MAX_CPU_ISA=AVX512_CORE in the environment is overridden by params.yaml numerics (DNNL_MAX_CPU_ISA unset)")
    assert lines[1].startswith("TF_NUM_INTRAOP_THREADS=8 in the environment is overridden by params.yaml numerics (TF_NUM_INTRAOP_THREADS 2)")
    native = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert apply_numerics(NATIVE, AVX2_CPU, native)[0].startswith("ONEDNN_MAX_CPU_ISA=AVX2 in the environment is overridden")
    assert "ONEDNN_MAX_CPU_ISA" not in native


def test_a_cpu_the_pinned_isa_does_not_fit_gets_one_line_with_the_expected_distance() -> None:
    (line,) = apply_numerics(PINNED, APPLE, {})
    assert line.startswith("this CPU (Apple M3, arm64) lacks avx2, fma for numerics.onednn_isa AVX2: it trains anyway, but its bytes will differ")
    assert "relative" in line and "\n" not in line
    assert apply_numerics(PINNED, AVX2_CPU, {}) == []
    # With oneDNN off the cap means nothing, so nothing to say.
    assert apply_numerics(PINNED.model_copy(update={"onednn": False}), APPLE, {}) == []


def test_the_cpu_is_read_once_from_cpuinfo_or_left_unknown(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 fma\n")
    assert read_cpu(cpuinfo).model == "Test CPU" and read_cpu(cpuinfo).flags == {"fpu", "avx2", "fma"}
    missing = read_cpu(tmp_path / "absent", system="Windows")
    assert missing.flags == frozenset() and missing.model  # platform's answer, or "unknown"
    answers = {
        "machdep.cpu.brand_string": "Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz",
        "machdep.cpu.features": "FPU SSE4.1 SSE4.2 AVX1.0 FMA",
        "machdep.cpu.leaf7_features": "BMI1 AVX2 BMI2",
    }
    mac = read_cpu(tmp_path / "absent", system="Darwin", sysctl=lambda name: answers.get(name, ""))
    assert mac.model == "Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz" and {"sse4_1", "avx", "fma", "avx2"} <= mac.flags
    assert isa_runs("AVX2", dataclasses.replace(mac, machine="x86_64")) and not isa_runs("AVX512_CORE", dataclasses.replace(mac, machine="x86_64"))
    apple = read_cpu(tmp_path / "absent", system="Darwin", sysctl=lambda name: "Apple M3" if name == "machdep.cpu.brand_string" else "")
    assert apple.model == "Apple M3" and apple.flags == frozenset()


def test_the_record_names_versions_platform_cpu_features_and_numerics() -> None:
    cpu = read_cpu()
    record = environment(PINNED, cpu)
    assert record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(record["packages"]) == {"tensorflow", "keras", "numpy", "dvc", "dvclive"} and all(record["packages"].values())
    assert record["numerics"] == {"intra_op_threads": 2, "inter_op_threads": 2, "onednn": True, "onednn_isa": "AVX2"}
    assert record["bf16_instructions"] is False and record["pinned_isa_runs"] == isa_runs("AVX2", cpu)
    assert set(record["cpu_flags"]) <= cpu.flags
    json.dumps(record)  # it goes into a committed JSON file


def _train_stage(tmp_path: Path, numerics: dict, precision: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    """`python -m stages train model1` on 140 random images for one epoch, under `numerics` and `env`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["epochs"] = 1
    params["numerics"].update(numerics)
    params["models"]["model1"]["precision"] = precision
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        write_npz(tmp_path / "data" / f"{split}.npz", {"x": rng.random((140, 28, 28, 1), dtype=np.float32), "y": rng.integers(0, 10, 140)})
    command = [sys.executable, "-m", "stages", "train", "model1", "--data", "data", "--model", "m.keras", "--log", "log", "--record", "run.json"]
    result = subprocess.run(command, cwd=tmp_path, env={**project_env(), "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads((tmp_path / "run.json").read_text())["environment"]


def test_a_bf16_model_on_eigen_kernels_trains_with_the_warning_once(tmp_path: Path) -> None:
    """oneDNN off: Eigen emulates bf16 on every CPU, with or without bf16 instructions, so the outcome is the same on both."""
    result, record = _train_stage(tmp_path, {"onednn": False}, "mixed_bfloat16", {})
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: model1: mixed_bfloat16 without bf16 hardware")]
    assert len(warnings) == 1 and "numerics.onednn is false" in warnings[0], result.stdout
    assert record["numerics"]["onednn"] is False and record["bf16_instructions"] is False


def test_a_pinned_isa_this_cpu_lacks_and_an_environment_cap_each_get_one_line(tmp_path: Path) -> None:
    """The pin is set to the lowest oneDNN level this CPU cannot run (a cap above a CPU is what a CPU
    below the pin sees), and the environment asks for another cap, which the params override."""
    cpu = read_cpu()
    lacking = next((level for level in ISA_LEVELS if not isa_runs(level, cpu)), None)
    assert lacking is not None, f"this CPU has every oneDNN level's flags ({sorted(set().union(*ISA_FLAGS.values()))}); add a higher level to the test"
    result, record = _train_stage(tmp_path, {"onednn_isa": lacking}, "float32", {"ONEDNN_MAX_CPU_ISA": "SSE41"})
    lines = result.stdout.splitlines()
    overridden = f"ONEDNN_MAX_CPU_ISA=SSE41 in the environment is overridden by params.yaml numerics (ONEDNN_MAX_CPU_ISA {lacking})"
    assert [line for line in lines if "in the environment is overridden" in line] == [f"warning: {overridden}; edit `numerics` to change it"]
    unfit = [line for line in lines if line.startswith("warning: this CPU (")]
    assert len(unfit) == 1 and f"for numerics.onednn_isa {lacking}: it trains anyway, but its bytes will differ from the committed runs" in unfit[0]
    assert record["numerics"]["onednn_isa"] == lacking and record["pinned_isa_runs"] is False
