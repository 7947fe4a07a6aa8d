"""Pin the numerics before TensorFlow starts, and record what a training run ran on.

`apply_numerics` sets TensorFlow's oneDNN switch and oneDNN's ISA cap from `params.yaml: numerics`
in the process environment (the entry point calls it before any stage module imports TensorFlow),
and `apply_threads` sets TensorFlow's thread pools once it is imported, before its first operation.
What was in the environment before is overridden, with one line saying so, because the params are
what `dvc.lock` records. A CPU that cannot run the pinned ISA (no AVX2, or not x86-64) trains
anyway, with one line saying its bytes will differ from the committed ones.

Every training stage writes `environment()` into its run record, so a `git diff` between two runs
shows a change of machine or numerics beside a change of result.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path

from stages.params.numerics import BF16_NATIVE_ISA, ISA_FLAGS, NATIVE, Numerics

ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"
# oneDNN reads the first; the second is its older name, which it still honours.
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# What TensorFlow reads for its thread pools when nothing sets them in code.
THREAD_VARIABLES = {"TF_NUM_INTRAOP_THREADS": "intra_op_threads", "TF_NUM_INTEROP_THREADS": "inter_op_threads"}
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
NUMERIC_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
PACKAGES = ("tensorflow", "keras", "numpy", "dvc", "dvclive")

# Measured for Model 1 on a 2-core AMD EPYC without bf16 instructions (AVX2 only), float32 and bf16 epochs
# interleaved: 241 against 28.5 images/s (reports/benchmarks/bf16_emulation.md, `python -m benchmarks.bf16_emulation`).
EMULATED_BF16_SLOWDOWN = "about 8x"
# How far another kernel family's results are after one full epoch from seed 0, measured on one CPU
# (native oneDNN against the pinned AVX2 cap, reports/benchmarks/portability.md,
# `python -m benchmarks.portability --distance`): what a CPU that cannot run the pinned ISA should expect.
OTHER_KERNELS_DISTANCE = (
    "after one epoch with other kernels the Adam-trained models' weights were 10-69% apart (relative L2) and their losses "
    "up to 5%, the Adadelta and SGD models' weights within 2e-5; reports/benchmarks/portability.md"
)


@dataclasses.dataclass(frozen=True)
class Cpu:
    model: str
    flags: frozenset[str]
    machine: str


def _sysctl(name: str) -> str:
    """A macOS `sysctl` value, or "" where there is none."""
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def read_cpu(cpuinfo: Path = Path("/proc/cpuinfo"), system: str | None = None, sysctl: Callable[[str], str] = _sysctl) -> Cpu:
    """The CPU's model name and feature flags, named as Linux names them, read once: from
    /proc/cpuinfo on Linux, from `sysctl` on macOS; elsewhere the model `platform` gives and no flags."""
    model, flags = "", frozenset[str]()
    if (system or platform.system()) == "Darwin":
        model = sysctl("machdep.cpu.brand_string")
        # Intel Macs list "AVX1.0 SSE4.1 ... AVX2 AVX512F"; Linux says avx, sse4_1, avx2, avx512f. Apple silicon lists none.
        named = f"{sysctl('machdep.cpu.features')} {sysctl('machdep.cpu.leaf7_features')}".lower().replace("avx1.0", "avx").replace(".", "_")
        flags = frozenset(named.split())
    else:
        try:
            lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            name, _, value = line.partition(":")
            if name.strip() == "model name" and not model:
                model = value.strip()
            elif name.strip() == "flags" and not flags:
                flags = frozenset(value.split())
    return Cpu(model or platform.processor() or "unknown", flags, platform.machine())


def isa_runs(level: str, cpu: Cpu) -> bool:
    """Whether `cpu` has the instructions of oneDNN's ISA `level` (`native`: any CPU)."""
    if level == NATIVE:
        return True
    return cpu.machine.lower() in ("x86_64", "amd64") and set(ISA_FLAGS[level]) <= cpu.flags


def _pinned_environment(numerics: Numerics) -> dict[str, str | None]:
    """The variables `numerics` sets (None: removed)."""
    isa = None if numerics.onednn_isa == NATIVE else numerics.onednn_isa
    values: dict[str, str | None] = {ONEDNN_SWITCH: "1" if numerics.onednn else "0", ISA_VARIABLES[0]: isa, ISA_VARIABLES[1]: None}
    values.update({variable: str(getattr(numerics, field)) for variable, field in THREAD_VARIABLES.items()})
    return values


def apply_numerics(numerics: Numerics, cpu: Cpu, environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Set `numerics` in `environ`, before TensorFlow is imported; the lines to show the user."""
    lines = []
    for variable, value in _pinned_environment(numerics).items():
        before = environ.get(variable)
        if before is not None and before != value and not (variable == ISA_VARIABLES[0] and value and before.upper() == value):
            pinned = "unset" if value is None else value
            lines.append(f"{variable}={before} in the environment is overridden by params.yaml numerics ({variable} {pinned}); edit `numerics` to change it")
        if value is None:
            environ.pop(variable, None)
        else:
            environ[variable] = value
    if numerics.onednn and not isa_runs(numerics.onednn_isa, cpu):
        missing = ", ".join(flag for flag in ISA_FLAGS[numerics.onednn_isa] if flag not in cpu.flags) or "x86-64"
        lines.append(
            f"this CPU ({cpu.model}, {cpu.machine}) lacks {missing} for numerics.onednn_isa {numerics.onednn_isa}: it trains anyway, "
            f"but its bytes will differ from the committed runs ({OTHER_KERNELS_DISTANCE})"
        )
    return lines


def apply_threads(numerics: Numerics) -> None:
    """TensorFlow's thread pools as pinned; call after importing TensorFlow, before its first operation."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(numerics.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(numerics.inter_op_threads)


def bf16_native(numerics: Numerics, cpu: Cpu) -> bool:
    """Whether a mixed_bfloat16 model runs on bf16 instructions: oneDNN on, a CPU with them, a cap that allows them."""
    return numerics.onednn and any(flag in cpu.flags for flag in BF16_FLAGS) and numerics.isa_at_least(BF16_NATIVE_ISA)


def bf16_warning(precision: str, numerics: Numerics, cpu: Cpu) -> str | None:
    """One line for a `mixed_bfloat16` model that will run on emulated bf16, else None."""
    if precision != "mixed_bfloat16" or bf16_native(numerics, cpu):
        return None
    if not numerics.onednn:
        reason = "numerics.onednn is false (Eigen's kernels)"
    elif not any(flag in cpu.flags for flag in BF16_FLAGS):
        reason = "this CPU has no bf16 instructions (avx512_bf16, amx_bf16)"
    else:
        reason = f"numerics.onednn_isa caps oneDNN at {numerics.onednn_isa}"
    return (
        f"mixed_bfloat16 without bf16 hardware: {reason}, so bf16 is emulated, {EMULATED_BF16_SLOWDOWN} slower than float32; "
        "`precision: float32` trains faster and is what the committed runs use"
    )


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(numerics: Numerics, cpu: Cpu) -> dict[str, object]:
    """The record: versions, platform, CPU model and numeric features, the pinned numerics."""
    return {
        "python": platform.python_version(),
        "packages": {package: _version(package) for package in PACKAGES},
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu.model,
        "cpu_count": os.cpu_count(),
        "cpu_flags": sorted(flag for flag in NUMERIC_FLAGS if flag in cpu.flags),
        "numerics": numerics.model_dump(),
        "pinned_isa_runs": isa_runs(numerics.onednn_isa, cpu),
        "bf16_instructions": bf16_native(numerics, cpu),
        "byteorder": sys.byteorder,
    }
