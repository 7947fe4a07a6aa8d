"""One line describing the machine a benchmark ran on (without importing TensorFlow), and a DVC run timed stage by stage."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

from stages.training.environment import read_cpu

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def describe() -> str:
    cpu = read_cpu()
    flags = [flag for flag in CPU_FLAGS if flag in cpu.flags]
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu.model}; {', '.join(flags)}; "
        f"Python {platform.python_version()}, TensorFlow {version('tensorflow')}, Keras {version('keras')}, DVC {version('dvc')}"
    )


def cpu_id(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first processor's family and model numbers in /proc/cpuinfo ("family 6 model 167"), or "" where
    there are none (macOS, Windows): two CPUs can share a model name (Intel's cloud CPUs all read
    "Intel(R) Xeon(R) Processor") and not a model. read_cpu, on the training path, keeps to name and flags."""
    try:
        block = cpuinfo.read_text(encoding="utf-8", errors="replace").split("\n\n", 1)[0]
    except OSError:
        return ""
    fields = {name.strip(): value.strip() for name, _, value in (line.partition(":") for line in block.splitlines())}
    return f"family {fields['cpu family']} model {fields['model']}" if "cpu family" in fields and "model" in fields else ""


def run_stamped(command: list[str], cwd: Path) -> tuple[float, list[dict], int]:
    """Run a `dvc repro` / `dvc exp run` style command, echoing its output, and stamp each stage's start as DVC
    prints it: (wall seconds, [{"stage", "started_s", "seconds"}], exit status). A stage's seconds run to the
    next stage's start (the last one's to the end), so they include DVC's own work around it."""
    started = time.perf_counter()
    stages: list[dict] = []
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            match = re.match(r"Running stage '([^']+)'", line)
            if match:
                stages.append({"stage": match.group(1), "started_s": round(time.perf_counter() - started, 1)})
    seconds = time.perf_counter() - started
    for current, following in zip(stages, [*stages[1:], {"started_s": round(seconds, 1)}], strict=True):
        current["seconds"] = round(following["started_s"] - current["started_s"], 1)
    return seconds, stages, process.returncode
