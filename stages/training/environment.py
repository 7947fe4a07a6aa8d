"""What a training run ran on: package versions, platform, and the CPU features that decide numerics.

Every training stage writes this into its run record, so a `git diff` between two runs shows a
change of environment beside a change of result. On a CPU without bf16 instructions, a model
declared `mixed_bfloat16` still trains (oneDNN emulates bf16 arithmetic) but much slower, and
bit-identical results with the committed runs are not guaranteed; `bf16_warning` says so.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

# oneDNN's documented switch to cap the instruction sets it uses, with the order of its levels
# (lowest first). Capping below AVX512_CORE_BF16 makes a bf16-capable CPU behave like one without.
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
ISA_LEVELS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "ALL",
)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
NUMERIC_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
PACKAGES = ("tensorflow", "keras", "numpy", "dvc", "dvclive")

# Measured for Model 1 on a 2-core AMD EPYC without bf16 instructions (AVX2 only), float32 and bf16 epochs
# interleaved: 241 against 28.5 images/s (reports/benchmarks/bf16_emulation.md, `python -m benchmarks.bf16_emulation`).
EMULATED_BF16_SLOWDOWN = "about 8x"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def isa_cap() -> str | None:
    """The oneDNN ISA cap set in the environment, upper-cased, or None."""
    for name in ISA_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value.strip().upper()
    return None


def bf16_native(flags: set[str] | None = None, cap: str | None = None) -> bool:
    """Whether oneDNN may use bf16 instructions: the CPU has them and no ISA cap forbids them."""
    flags = cpu_flags() if flags is None else flags
    if not any(flag in flags for flag in BF16_FLAGS):
        return False
    cap = isa_cap() if cap is None else cap
    if cap is None or cap not in ISA_LEVELS:
        return True
    return ISA_LEVELS.index(cap) >= ISA_LEVELS.index("AVX512_CORE_BF16")


def bf16_warning(precision: str, flags: set[str] | None = None, cap: str | None = None) -> str | None:
    """One line for a `mixed_bfloat16` model on a CPU (or ISA cap) without bf16 instructions, else None."""
    if precision != "mixed_bfloat16" or bf16_native(flags, cap):
        return None
    reason = f"oneDNN is capped at {cap or isa_cap()}" if (cap or isa_cap()) else "this CPU has no bf16 instructions (avx512_bf16, amx_bf16)"
    return (
        f"mixed_bfloat16 without bf16 hardware: {reason}, so bf16 is emulated, {EMULATED_BF16_SLOWDOWN} slower than float32; "
        "`precision: float32` trains faster but gives results that differ from the committed ones"
    )


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, object]:
    """The record: versions, platform, CPU model and numeric features, the oneDNN settings."""
    flags = cpu_flags()
    model = next((line.partition(":")[2].strip() for line in _cpuinfo_lines() if line.startswith("model name")), platform.processor())
    return {
        "python": platform.python_version(),
        "packages": {package: _version(package) for package in PACKAGES},
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "cpu_flags": sorted(flag for flag in NUMERIC_FLAGS if flag in flags),
        "bf16_instructions": bf16_native(flags),
        "onednn_isa_cap": isa_cap(),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "byteorder": sys.byteorder,
    }


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
