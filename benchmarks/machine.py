"""One line describing the machine a benchmark ran on (without importing TensorFlow)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version

from stages.training.environment import read_cpu

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def describe() -> str:
    cpu = read_cpu()
    flags = [flag for flag in CPU_FLAGS if flag in cpu.flags]
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu.model}; {', '.join(flags)}; "
        f"Python {platform.python_version()}, TensorFlow {version('tensorflow')}, Keras {version('keras')}, DVC {version('dvc')}"
    )
