"""What a Dask worker runs for one DVC stage: a clone at the driver's commit, the stage, its results.

`stages/tools/cluster.py` (the driver) sends this file to the workers with Dask's `upload_file`, so a
worker needs the project's locked packages and git, not a checkout of the project or a disk shared
with the driver. It imports nothing of the project. For one stage, `run_stage`:

1. clones the driver's git URL into a fresh folder under the worker's directory and checks out the
   driver's commit (the code and params.yaml every stage reads);
2. writes the driver's `dvc.lock`, the lock entries of the upstream stages that ran on other workers,
   and the small uncached outputs the stage reads (files Dask carries);
3. `dvc pull`s the cached outputs the stage reads (the prepared data, a model) from the DVC remote;
4. runs `dvc repro --single-item <stage>`: DVC decides whether the stage must run and writes its
   lock entry, exactly as a serial `dvc repro` does;
5. `dvc push`es the stage's cached outputs to the remote and returns its lock entry and its uncached
   outputs to the driver.

A worker killed in the middle loses only its own folder: Dask runs the task again elsewhere from step 1.
The stage's processes are killed with the worker (a watchdog process, see `_WATCHDOG`), so no
orphaned training run goes on using the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Runs `dvc ...` and kills it and everything it started when the worker dies. On Linux the kernel
# sends the watchdog SIGTERM when its parent (the worker) exits (PR_SET_PDEATHSIG), and the
# watchdog kills its process group, which `dvc` and the stage's `python` it starts, being
# grandchildren, would not otherwise leave. macOS and Windows have no such signal: there the
# watchdog checks once a second that the worker is alive (psutil, in the lock through distributed)
# and kills its child's whole process tree. STAGES_WATCHDOG_POLL=1 makes Linux poll too (the tests).
_WATCHDOG = """
import os, signal, subprocess, sys, threading, time
parent = int(sys.argv[1])
death_signal = sys.platform.startswith("linux") and os.environ.get("STAGES_WATCHDOG_POLL") != "1"
if death_signal:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != parent:
    sys.exit(137)  # the worker died before the line above ran
child = subprocess.Popen(sys.argv[2:])
def stop(signum=None, frame=None):
    if hasattr(os, "killpg"):
        os.killpg(0, signal.SIGKILL)
    import psutil
    for process in [*psutil.Process(child.pid).children(recursive=True), psutil.Process(child.pid)]:
        try:
            process.kill()
        except psutil.Error:
            pass
    os._exit(137)
if death_signal:
    signal.signal(signal.SIGTERM, stop)
else:
    import psutil
    def watch():
        while child.poll() is None:
            try:
                gone = os.getppid() != parent or psutil.Process(parent).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                gone = True
            if gone:
                stop()
            time.sleep(1)
    threading.Thread(target=watch, daemon=True).start()
sys.exit(child.wait())
"""


class StageFailed(RuntimeError):
    """A command of the stage's run failed; the message has its output's last lines."""


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise StageFailed(f"`{' '.join(command)}` exited with {result.returncode} in {cwd}:\n{tail}")
    return result


def _environment() -> dict[str, str]:
    """The worker's environment, with its own interpreter's `dvc` and `python` first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def write_output(root: Path, path: str, files: dict[str, bytes]) -> None:
    """Make `root/path` hold exactly `files` ({relative name: bytes}, "" for a single file), whole:
    written beside it, then swapped in, so a process killed here leaves the old output or the new."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        fresh = staging / "new"
        if "" in files:
            fresh.write_bytes(files[""])
        else:
            for name, content in files.items():
                (fresh / name).parent.mkdir(parents=True, exist_ok=True)
                (fresh / name).write_bytes(content)
        if target.is_dir():
            target.rename(staging / "old")
        os.replace(fresh, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_output(root: Path, path: str) -> dict[str, bytes] | None:
    """An uncached output as {relative name: bytes} ("" for a single file), None if absent."""
    target = root / path
    if target.is_file():
        return {"": target.read_bytes()}
    if target.is_dir():
        return {str(file.relative_to(target)): file.read_bytes() for file in sorted(target.rglob("*")) if file.is_file()}
    return None


def set_lock_entries(lock: Path, entries: dict[str, dict]) -> None:
    """Write `entries` into the `stages` of `lock` with DVC's own YAML writer, as `dvc repro` does:
    an existing stage keeps its place, a new one goes last."""
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(lock) as data:
        if not data:
            data["schema"] = "2.0"
        data["stages"] = data.get("stages", {})
        data["stages"].update(entries)


def run_stage(job: dict[str, Any], *upstream: dict[str, Any]) -> dict[str, Any]:
    """Run the stage `job` describes in a fresh clone; `upstream` are the results of the stages it
    depends on that ran in this same cluster run. Returns the stage's lock entry and uncached outputs."""
    from dvc.utils.serialize import load_yaml

    try:
        from distributed import get_worker

        base = Path(get_worker().local_directory)
        worker = get_worker().name
    except ValueError:  # called outside a worker (a unit test)
        base, worker = Path(tempfile.gettempdir()), "local"
    started = time.monotonic()
    env = _environment()
    stage = job["stage"]
    workdir = Path(tempfile.mkdtemp(prefix=f"{stage.replace('@', '-')}-", dir=base))
    try:
        _run(["git", "clone", "-q", "--no-checkout", job["git_url"], str(workdir)], base, env)
        try:
            _run(["git", "checkout", "-q", "--detach", job["commit"]], workdir, env)
        except StageFailed as error:
            raise StageFailed(f"commit {job['commit']} is not in {job['git_url']}: push it there first ({error})") from None
        lock = workdir / "dvc.lock"
        lock.write_text(job["lock"], encoding="utf-8")
        set_lock_entries(lock, {result["stage"]: result["entry"] for result in upstream})
        shipped = {**job["files"], **{path: files for result in upstream for path, files in result["files"].items()}}
        for path, files in shipped.items():
            if path in job["reads_uncached"] or path in job["uncached_outs"]:
                write_output(workdir, path, files)
        if job["local_config"] is not None:
            (workdir / ".dvc" / "config.local").write_text(job["local_config"], encoding="utf-8")
        remote = ["-r", job["remote"]]
        if job["remote_url"]:
            _run(["dvc", "remote", "add", "--local", "-f", job["remote"], job["remote_url"]], workdir, env)
        if job["reads_cached"]:
            _run(["dvc", "pull", "-q", *remote, *job["reads_cached"]], workdir, env)
        if job["cached_outs"] and not job["changed"]:
            # Only upstream results changed: with its own outputs in place, DVC may find nothing to do.
            _run(["dvc", "pull", "-q", "--allow-missing", *remote, *job["cached_outs"]], workdir, env)
        repro = _run(["dvc", "repro", "--single-item", stage], workdir, env)
        ran = f"Running stage '{stage}'" in repro.stdout
        if job["cached_outs"]:
            _run(["dvc", "push", "-q", *remote, stage], workdir, env)
        entry = load_yaml(lock)["stages"][stage]  # plain dicts and lists: DVC reads YAML with typ="safe"
        files = {path: read_output(workdir, path) for path in job["uncached_outs"]}
        return {
            "stage": stage,
            "entry": entry,
            "files": {path: content for path, content in files.items() if content is not None},
            "ran": ran,
            "worker": str(worker),
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
