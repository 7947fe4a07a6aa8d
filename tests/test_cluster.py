"""The pipeline's pending stages on a Dask cluster, against a serial `dvc repro` of the same slice.

A real scheduler and two workers run as separate processes on loopback (`dask scheduler`, `dask worker
--no-nanny`, as a user starts them on two machines). Nothing is shared on disk with the driver on
purpose: the workers clone the code through `git daemon` (git's own network protocol) and get the
data through the S3 remote (rclone on loopback, as in test_remote.py), with the credentials in their
environment. The slice is the committed workflow run with a changed batch size, which makes the
main run and the replica of Model 1 (seeds 0 and 1) and its evaluation pending.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from stages.params.base import read_yaml
from tests.conftest import REPO, clone_project, dvc, edit_params, git, project_env, ran_stages, run
from tests.test_remote import ACCESS_KEY, S3Server, add_remote, free_port

TARGETS = ["evaluate@model1", "replica@model1-1"]
PENDING = {"train@model1", "evaluate@model1", "replica@model1-1"}
# What the stages write, compared byte for byte (the run records hold timings and are left out).
RESULTS = ["models/model1.keras", "reports/training/model1", "reports/eval/model1", "reports/replicas/model1/seed-1"]


def files_under(root: Path, paths: list[str]) -> dict[str, bytes]:
    found = {}
    for path in paths:
        target = root / path
        for file in sorted(target.rglob("*")) if target.is_dir() else [target]:
            if file.is_file():
                found[str(file.relative_to(root))] = file.read_bytes()
    return found


def lock_without_timings(project: Path) -> str:
    """dvc.lock with the hashes of the run records (timings, environment) masked."""
    lines = (project / "dvc.lock").read_text().splitlines()
    masked, in_record = [], False
    for line in lines:
        if re.match(r"\s*- path: ", line):
            in_record = "path: reports/runs/" in line
        elif in_record and re.match(r"\s*(md5|size): ", line):
            line = re.sub(r": .*", ": <timing>", line)
        masked.append(line)
    return "\n".join(masked)


def prepare_clone(source: Path, destination: Path, server: S3Server) -> Path:
    """A user's clone of the slice run with the S3 remote and the edit that makes stages pending."""
    clone_project(source, destination)
    add_remote(destination, server)
    edit_params(destination, train={"batch_size": 64})
    git("commit", "-qam", "batch size 64", cwd=destination)
    return destination


class Cluster:
    """`dask scheduler` and `dask worker` processes on loopback, and `git daemon` serving the driver's repository."""

    def __init__(self, root: Path, server: S3Server, workers: int = 2) -> None:
        self.root = root
        self.port = free_port()
        self.git_port = free_port()
        bin_dir = Path(sys.executable).parent
        env = {**project_env(), "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": server.secret}
        self.log = root / "cluster.log"
        log = self.log.open("a")
        self.scheduler = subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.workers = {}
        for index in range(workers):
            name = f"w{index + 1}"
            command = [
                str(bin_dir / "dask"),
                "worker",
                self.address,
                "--name",
                name,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--local-directory",
                str(root / name),
            ]
            self.workers[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        # `git daemon` runs git-daemon as a child: a session of its own lets stop() kill both.
        self.daemon = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}", "--listen=127.0.0.1", f"--port={self.git_port}", str(root)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_for_workers(workers)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def git_url(self, project: Path) -> str:
        return f"git://127.0.0.1:{self.git_port}/{project.relative_to(self.root)}"

    def wait_for_workers(self, count: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.log.read_text().count("Register worker") >= count:
                return
            time.sleep(0.5)
        raise AssertionError(f"{count} workers did not register within 120 s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        os.killpg(self.daemon.pid, signal.SIGKILL)
        self.daemon.wait(timeout=30)


def start_driver(project: Path, cluster: Cluster) -> subprocess.Popen:
    command = [sys.executable, "-m", "stages.tools.cluster", "--scheduler", cluster.address, "--git-url", cluster.git_url(project), *TARGETS]
    return subprocess.Popen(command, cwd=project, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    s3 = S3Server(tmp_path_factory.mktemp("s3-cluster") / "storage")
    s3.start()
    yield s3
    s3.kill()


@pytest.fixture(scope="module")
def serial(workflow_base: Path, server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the same clone, edit and targets through a plain serial `dvc repro`."""
    project = prepare_clone(workflow_base, tmp_path_factory.mktemp("serial") / "project", server)
    result = dvc("repro", *TARGETS, cwd=project)
    assert ran_stages(result.stdout) == PENDING
    return project


@pytest.fixture
def cluster(tmp_path: Path, server: S3Server) -> Cluster:
    started = Cluster(tmp_path, server)
    yield started
    started.stop()


def assert_same_as_serial(project: Path, serial: Path) -> None:
    assert lock_without_timings(project) == lock_without_timings(serial)
    assert files_under(project, RESULTS) == files_under(serial, RESULTS)
    assert "Data and pipelines are up to date" in dvc("status", *TARGETS, cwd=project).stdout
    assert ran_stages(dvc("repro", *TARGETS, cwd=project).stdout) == set()


def test_pending_stages_run_on_two_workers_as_a_serial_repro_would(serial: Path, server: S3Server, cluster: Cluster, workflow_base: Path) -> None:
    project = prepare_clone(workflow_base, cluster.root / "driver", server)
    driver = start_driver(project, cluster)
    output, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, output
    ran = dict(re.findall(r"^(\S+): ran on (w\d)", output, flags=re.MULTILINE))
    assert set(ran) == PENDING, output
    # The two training stages are independent: with two free workers, they ran side by side.
    assert ran["train@model1"] != ran["replica@model1-1"], output
    assert_same_as_serial(project, serial)
    # The model reached the driver through the remote, where the worker pushed it.
    model = yaml.safe_load((project / "dvc.lock").read_text())["stages"]["train@model1"]["outs"][0]["md5"]
    assert model in server.digests()


def command_line(process: psutil.Process) -> str:
    """A process's command line, or "" for one that ended (or is a zombie) since it was listed."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def test_a_worker_killed_in_the_middle_of_a_stage_loses_nothing(serial: Path, server: S3Server, cluster: Cluster, workflow_base: Path) -> None:
    project = prepare_clone(workflow_base, cluster.root / "driver", server)
    driver = start_driver(project, cluster)
    victim, stage_processes = None, []
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and driver.poll() is None:
        for name, worker in cluster.workers.items():
            children = psutil.Process(worker.pid).children(recursive=True)
            training = [child for child in children if {"stages", "train"} <= set(command_line(child).split())]
            if training and time.time() - training[0].create_time() > 3:  # in the middle of training, not at its start
                victim, stage_processes = name, children
        time.sleep(0.2)
    assert victim is not None, f"no worker was seen training:\n{driver.communicate()[0]}"
    cluster.workers[victim].send_signal(signal.SIGKILL)
    # The stage's processes go with their worker (the task's watchdog), not on in the background.
    gone, alive = psutil.wait_procs(stage_processes, timeout=30)
    assert not alive, [process.cmdline() for process in alive]

    output, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, output
    ran = dict(re.findall(r"^(\S+): ran on (w\d)", output, flags=re.MULTILINE))
    assert set(ran) == PENDING and victim not in ran.values(), output
    assert_same_as_serial(project, serial)


def test_an_unreachable_scheduler_or_uncommitted_params_give_one_line(tmp_path: Path, workflow_base: Path, server: S3Server) -> None:
    project = prepare_clone(workflow_base, tmp_path / "driver", server)
    address = f"tcp://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "stages.tools.cluster", "--scheduler", address, "--timeout", "2", *TARGETS]
    result = run(command, project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: cannot reach the Dask scheduler at {address} within 2 s (OSError)"

    edit_params(project, train={"batch_size": 32})
    result = run(command, project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: uncommitted changes in params.yaml: workers run the code and params of HEAD")
    assert git("status", "--porcelain", cwd=project).stdout.strip() == "M params.yaml"  # nothing run, nothing written


def test_the_makespan_simulation_takes_ready_stages_in_submission_order() -> None:
    from benchmarks.cluster_makespan import Stage, critical_path, makespan

    stages = [Stage("a", 1, ()), Stage("b", 4, ("a",)), Stage("c", 2, ("a",)), Stage("d", 2, ("a",)), Stage("e", 1, ("b", "c", "d"))]
    assert makespan(stages, 1) == 10
    assert makespan(stages, 2) == 6  # b on one worker; c then d on the other; e after both
    assert critical_path(stages) == 6
    # Submitted before b, c and d, `long` starts first: 1-10 on one worker, b, c, d, e (1-10) on the other.
    assert makespan([*stages[:1], Stage("long", 9, ("a",)), *stages[1:]], 2) == 10
    assert makespan([*stages, Stage("long", 9, ("a",))], 2) == 14  # submitted last: it waits for a worker until 5


def test_the_makespan_report_groups_recorded_training_times_by_model_and_leaves_estimates_out() -> None:
    from benchmarks.cluster_makespan import Stage, per_model

    stages = [
        Stage("prepare", 5, ()),
        Stage("train@model1", 100, ("prepare",)),
        Stage("replica@model1-1", 120, ("prepare",)),
        Stage("replica@model1-2", 110, ("prepare",), estimated=True),
        Stage("ablation@model2_adam-0", 90, ("prepare",)),
        Stage("evaluate@model1", 7, ("train@model1",)),
    ]
    assert per_model(stages) == {"model1": [100, 120], "model2_adam": [90]}


def test_the_local_cluster_starts_as_many_workers_as_the_pinned_threads_leave_cores_for(tmp_path: Path) -> None:
    from stages.tools.cluster import ClusterError, default_workers

    params = read_yaml((REPO / "params.yaml").read_text())
    threads = params["numerics"]["intra_op_threads"]
    assert default_workers(REPO / "params.yaml", 8 * threads) == 8
    assert default_workers(REPO / "params.yaml", threads + 1) == 1 and default_workers(REPO / "params.yaml", 1) == 1
    params["numerics"]["intra_op_threads"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ClusterError, match="numerics.intra_op_threads"):
        default_workers(tmp_path / "params.yaml", 8)
