"""One line describing the machine a benchmark ran on (without importing TensorFlow)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version
from pathlib import Path

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def describe() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), cpu)
        flags = [flag for flag in CPU_FLAGS if f" {flag}" in text]
        cpu = f"{model}; {', '.join(flags)}"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}; "
        f"Python {platform.python_version()}, TensorFlow {version('tensorflow')}, Keras {version('keras')}, DVC {version('dvc')}"
    )
