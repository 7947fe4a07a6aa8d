"""The cluster task's watchdog: a stage's processes die with their worker, by Linux's parent-death
signal and by the polling that macOS and Windows get (forced here with STAGES_WATCHDOG_POLL=1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import REPO

WORKER = """
import sys
from pathlib import Path
from stages.tools.cluster_task import _environment, _run
_run([sys.executable, "-c", "import time; time.sleep(120)"], Path("."), _environment())
"""


@pytest.mark.parametrize("poll", ["0", "1"], ids=["death-signal", "polling"])
def test_the_stage_dies_with_its_worker(poll: str) -> None:
    env = {**os.environ, "STAGES_WATCHDOG_POLL": poll, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=REPO, env=env)
    try:
        deadline, sleepers = time.monotonic() + 30, []
        while not sleepers and time.monotonic() < deadline:
            sleepers = [child for child in psutil.Process(worker.pid).children(recursive=True) if "time.sleep(120)" in " ".join(child.cmdline())]
            time.sleep(0.2)
        assert sleepers, "the worker never started its stage"
        watchdogs = psutil.Process(worker.pid).children()
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        _, alive = psutil.wait_procs([*sleepers, *watchdogs], timeout=15)
        assert not alive, [process.cmdline() for process in alive]
    finally:
        worker.kill()
