"""Run the pipeline's pending stages on a Dask cluster: `python -m stages.tools.cluster [TARGETS]`.

DVC runs stages one after another; the training stages (`train@`, `replica@`, `ablation@`) depend
only on the prepared data, so on a cluster they can run side by side. This command asks DVC which
stages `dvc repro [TARGETS]` would consider (its own plan, in its order), submits each pending one as
a Dask task that depends on the tasks of its pending upstream stages, and lets Dask's scheduler run
as many at once as it has workers. Each task (`cluster_task.run_stage`) runs the stage with DVC in a
fresh clone on the worker: code from git at this commit, cached inputs from the DVC remote. As each
stage finishes, its uncached outputs and `dvc.lock` entry are written here and its cached outputs
pulled, so DVC stays the record: afterwards `dvc status` is clean and `dvc repro` has nothing to do.

    python -m stages.tools.cluster                          # a local cluster of cores // numerics threads workers
    python -m stages.tools.cluster --workers 4 replica      # 4 local workers, the replica stages
    python -m stages.tools.cluster --scheduler tcp://host:8786 --git-url git@host:me/mnist-cnn-dvc.git

With `--scheduler`, workers started anywhere (`dask worker tcp://host:8786`, dask-jobqueue on SLURM)
clone `--git-url` (default: the `origin` remote, where this commit must be pushed) and use the DVC
remote (`--remote`, default the project's default remote) with their own credentials, e.g.
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in their environment. On a local cluster, the workers
clone this repository and, without a DVC remote, use this workspace's cache as theirs.

What is ours and what is not: Dask schedules, retries (a task whose worker dies runs again; a failed
task is retried `--retries` times) and carries results between tasks; DVC decides whether a stage
must run, runs it, hashes, stores and moves the cached files. This module only translates DVC's
plan into Dask tasks and writes each result back into the workspace.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from stages.params.base import ParamsError, load
from stages.params.numerics import NumericsSection
from stages.tools import cluster_task

LOCAL_REMOTE = "driver-cache"


class ClusterError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


@dataclass
class StagePlan:
    """One stage DVC would consider, with what its task needs to know."""

    name: str
    changed: bool
    upstream: list[str]  # the stages it depends on, among those in the plan
    reads_cached: list[str] = field(default_factory=list)  # cached outputs of other stages it reads
    reads_uncached: list[str] = field(default_factory=list)  # uncached outputs of other stages it reads
    cached_outs: list[str] = field(default_factory=list)
    uncached_outs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # deps no stage writes: code, params files, raw inputs


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/")


def plan(root: Path, targets: list[str]) -> tuple[list[StagePlan], list[StagePlan], list[str]]:
    """DVC's plan for `dvc repro TARGETS`, in its order: (all stages considered, the pending ones,
    every stage of the project in `dvc.yaml` order).

    A stage is pending when DVC finds it changed or a stage it depends on is pending; whether the
    latter really runs is DVC's call on the worker, once the upstream results are in.
    """
    from dvc.repo import Repo
    from dvc.repo.reproduce import get_active_graph, plan_repro

    with Repo(str(root)) as repo, repo.lock:
        stages = [stage for target in (targets or ["dvc.yaml"]) for stage in repo.stage.collect(target)]
        graph = get_active_graph(repo.index.graph)
        steps = plan_repro(graph, stages)
        outs = {str(out.def_path): (stage.addressing, out.use_cache) for stage in graph for out in stage.outs}
        plans: list[StagePlan] = []
        planned: set[str] = set()
        pending: set[str] = set()
        for stage in steps:
            name = stage.addressing
            upstream = sorted({dep_stage.addressing for dep_stage in graph.successors(stage)})
            changed = not stage.frozen and stage.changed()
            item = StagePlan(name=name, changed=changed, upstream=[up for up in upstream if up in planned])
            for dep in stage.deps:
                path = str(dep.def_path)
                producers = [(out, cached) for out, (owner, cached) in outs.items() if owner != name and _overlap(path, out)]
                if not producers:
                    item.sources.append(path)
                for out, cached in producers:
                    (item.reads_cached if cached else item.reads_uncached).append(out)
            for out in stage.outs:
                (item.cached_outs if out.use_cache else item.uncached_outs).append(str(out.def_path))
            plans.append(item)
            planned.add(name)
            if not stage.frozen and (changed or pending.intersection(upstream)):
                pending.add(name)
        declared = [stage.addressing for stage in repo.index.stages]
    return plans, [item for item in plans if item.name in pending], declared


def _git(root: Path, *arguments: str) -> str:
    result = subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"git {' '.join(arguments)}: {result.stderr.strip()}")
    return result.stdout.rstrip()  # a porcelain line can start with a space


def check_committed(root: Path, pending: list[StagePlan]) -> None:
    """Workers check out HEAD: every file a pending stage reads that no stage writes must be committed."""
    sources = sorted({path for item in pending for path in item.sources})
    changed = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *sources)
    if changed:
        names = ", ".join(line[3:] for line in changed.splitlines())
        raise ClusterError(f"uncommitted changes in {names}: workers run the code and params of HEAD, so commit them first")


def _dvc(root: Path, *arguments: str, check: bool = True) -> str:
    """Run this interpreter's `dvc`; its stdout, or a ClusterError with its last line if it fails and `check`."""
    dvc = Path(sys.executable).parent / "dvc"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([str(dvc), *arguments], cwd=root, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
        raise ClusterError(f"dvc {' '.join(arguments)} failed: {last[0]}")
    return result.stdout


def _default_remote(root: Path) -> str | None:
    return _dvc(root, "config", "core.remote", check=False).strip() or None


def apply_result(root: Path, item: StagePlan, result: dict[str, Any], remote: list[str]) -> None:
    """Write a finished stage's uncached outputs and lock entry here, then bring its cached outputs."""
    for path, files in result["files"].items():
        cluster_task.write_output(root, path, files)
    cluster_task.set_lock_entries(root / "dvc.lock", {item.name: result["entry"]})
    if item.cached_outs:
        # With this workspace's cache as the workers' remote, the files are in the cache already.
        _dvc(root, *(["checkout", item.name] if remote[-1] == LOCAL_REMOTE else ["pull", *remote, item.name]))


def order_lock(root: Path, before: list[str], order: list[str]) -> None:
    """Stages new to `dvc.lock` go after those it had, in `order` (dvc.yaml's).

    A serial `dvc repro` also keeps the stages a lock had in place and appends new ones as they run,
    but in an order that changes from run to run (its plan walks a graph whose node order follows
    Python's string hashing: four `dvc repro --dry` of the same three targets gave three orders).
    Here it is the order stages are declared in.
    """
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(root / "dvc.lock") as data:
        stages = data.get("stages", {})
        ranked = {name: (0, before.index(name)) if name in before else (1, order.index(name) if name in order else len(order)) for name in stages}
        reordered = {name: stages[name] for name in sorted(stages, key=ranked.__getitem__)}
        stages.clear()
        stages.update(reordered)


def _top_level(path: Path) -> ModuleType:
    """The module at `path` imported under its bare name, as workers import what `upload_file` sent."""
    name = path.stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _connect(scheduler: str | None, workers: int, timeout: float):
    from distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.WARNING)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout=timeout), None
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({type(error).__name__})") from None


@dataclass
class Settings:
    """Where the workers get the code and the data from."""

    commit: str
    git_url: str
    remote_name: str
    remote_url: str | None  # set when the workers use this workspace's cache as their remote
    local_config: str | None  # .dvc/config.local, passed on to a local cluster only

    @property
    def remote(self) -> list[str]:
        return ["-r", self.remote_name]


def settings(root: Path, local: bool, git_url: str | None, remote_name: str | None) -> Settings:
    if git_url is None:
        git_url = str(root) if local else _git(root, "remote", "get-url", "origin")
    remote_name = remote_name or _default_remote(root)
    remote_url = None
    if remote_name is None:
        if not local:
            raise ClusterError("no DVC remote: workers on other machines get the data through one (README, 'Share results'); add one or pass --remote")
        # One machine and no remote: the workers use this workspace's cache as their remote (same layout).
        remote_name, remote_url = LOCAL_REMOTE, str(root / ".dvc" / "cache")
    local_file = root / ".dvc" / "config.local"
    local_config = local_file.read_text() if local and local_file.exists() else None
    return Settings(_git(root, "rev-parse", "HEAD"), git_url, remote_name, remote_url, local_config)


def job(root: Path, item: StagePlan, lock_text: str, where: Settings) -> dict[str, Any]:
    """What `cluster_task.run_stage` needs for one stage, the uncached files it reads included."""
    files = {}
    for path in sorted(set(item.reads_uncached) | set(item.uncached_outs)):
        content = cluster_task.read_output(root, path)
        if content is not None:
            files[path] = content
    return {
        "stage": item.name,
        "git_url": where.git_url,
        "commit": where.commit,
        "lock": lock_text,
        "files": files,
        "reads_cached": item.reads_cached,
        "reads_uncached": item.reads_uncached,
        "cached_outs": item.cached_outs,
        "uncached_outs": item.uncached_outs,
        "changed": item.changed,
        "remote": where.remote_name,
        "remote_url": where.remote_url,
        "local_config": where.local_config,
    }


def run(root: Path, targets: list[str], scheduler: str | None, workers: int, git_url: str | None, remote_name: str | None, retries: int, timeout: float) -> int:
    plans, pending, declared = plan(root, targets)
    if not pending:
        print("Nothing to run: every stage is up to date.")
        return 0
    check_committed(root, pending)
    where = settings(root, scheduler is None, git_url, remote_name)
    client, cluster = _connect(scheduler, workers, timeout)
    lock_text = (root / "dvc.lock").read_text() if (root / "dvc.lock").exists() else ""
    before = list(_lock_stages(lock_text))
    by_name = {item.name: item for item in plans}
    failed: list[str] = []
    try:
        from distributed import as_completed

        # Cached inputs that stages outside this run produced reach the workers through the remote.
        produced_here = {out for item in pending for out in item.cached_outs}
        inputs = sorted({path for item in pending for path in item.reads_cached} - produced_here)
        if inputs and where.remote_url is None:
            _dvc(root, "push", "-q", *where.remote, *inputs)
        # Workers need no checkout of this project: Dask sends them the task's module (and sends it
        # again to a worker that joins later), importable there as `cluster_task`.
        client.upload_file(cluster_task.__file__)
        task_module = _top_level(Path(cluster_task.__file__))
        futures = {}
        for item in pending:
            upstream = [futures[name] for name in item.upstream if name in futures]
            task = job(root, item, lock_text, where)
            futures[item.name] = client.submit(task_module.run_stage, task, *upstream, key=f"{item.name}-{uuid.uuid4().hex[:12]}", pure=False, retries=retries)
        print(f"{len(futures)} stages on {len(client.scheduler_info()['workers'])} workers at {client.scheduler.address}", flush=True)
        names = {future.key: name for name, future in futures.items()}
        for future in as_completed(list(futures.values())):
            name = names[future.key]
            if future.status != "finished":
                failed.append(name)
                blocked = [up for up in by_name[name].upstream if up in failed]
                reason = f"not run: {', '.join(blocked)} failed" if blocked else f"failed: {future.exception()}"
                print(f"{name}: {reason}", file=sys.stderr, flush=True)
                continue
            result = future.result()
            apply_result(root, by_name[name], result, where.remote)
            print(f"{name}: {'ran' if result['ran'] else 'up to date'} on {result['worker']} in {result['seconds']:.0f} s", flush=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        order_lock(root, before, declared)
    if failed:
        print(f"{len(failed)} stages failed or were not run; `dvc status` names what is left", file=sys.stderr)
        return 1
    return 0


def _lock_stages(lock_text: str) -> dict:
    """The `stages` of a `dvc.lock`'s text, parsed by DVC's own YAML reader."""
    from dvc.utils.serialize import parse_yaml

    return (parse_yaml(lock_text, "dvc.lock") or {}).get("stages") or {}


def default_workers(params_file: Path, cores: int) -> int:
    """As many stages at once as the pinned threads leave cores for: each stage uses
    `numerics.intra_op_threads` of them (at least one worker)."""
    try:
        threads = load(NumericsSection, params_file).numerics.intra_op_threads
    except ParamsError as error:
        raise ClusterError(str(error)) from error
    return max(1, cores // threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.tools.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="stages or dvc.yaml entries, as for `dvc repro` (default: all)")
    parser.add_argument("--scheduler", help="a running scheduler's address, e.g. tcp://host:8786 (default: start a local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster size (default: this machine's cores // params.yaml numerics.intra_op_threads)")
    parser.add_argument("--git-url", help="where workers clone the code (default: this repository locally, `origin` otherwise)")
    parser.add_argument("--remote", help="the DVC remote the workers use (default: the project's default remote)")
    parser.add_argument("--retries", type=int, default=0, help="times a failed stage is run again (default 0; a task whose worker dies always runs again)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the scheduler (default 10)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    root = Path.cwd()
    if not (root / "dvc.yaml").exists():
        print(f"error: no dvc.yaml in {root}: run this from the project's root", file=sys.stderr)
        return 1
    try:
        workers = args.workers or default_workers(root / "params.yaml", os.cpu_count() or 1)
        return run(root, args.targets, args.scheduler, workers, args.git_url, args.remote, args.retries, args.timeout)
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
