"""Check the hashed locks for every platform and Python they cover, without being on it.

    python -m stages.tools.platforms [--lock requirements.txt ...] [--pair linux-x86_64/3.12 ...] [--jobs 4]

For each platform/Python pair (the platforms below, the Pythons of pyproject.toml's `requires-python`)
two dry runs against the configured package index, because each catches what the other misses
(measured when the locks became universal; see README, "Locked, with hashes"):

- `uv pip install --dry-run --python-platform ... --python-version ...` resolves the lock with the
  target's markers, so a dependency only that platform needs and the lock lacks (pywin32 on Windows)
  fails it; it does not check the files' hashes in a dry run.
- `pip install --dry-run --no-deps --only-binary=:all: --platform ... --python-version ...` picks
  and downloads the very file that platform would install and checks it against the lock's hashes,
  so a forged or stale hash fails it; it evaluates markers for this machine, so it cannot see a
  missing platform-only dependency. The source-only packages (SOURCE_ONLY) are left out of it: they
  are one file for every platform, checked once with `pip download --no-binary`.

A lock whose every entry (version, markers, hashes) is also in another lock checked here gets the
uv run only: pip would check the same files again. And a package with a single wheel that is pure
Python (`-none-any`, as pip's report of the first pair shows) is one file everywhere: pip checks it on
the first pair only, the platform wheels on every pair (a third less of pip's time). Every problem names the pair, the lock, the tool
and the tool's own lines (which name the package). Exit 1 when any pair fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from stages.__main__ import python_range

REPO = Path(__file__).resolve().parents[2]
LOCKS = ("requirements.txt", "requirements-dev.txt")


def _manylinux(arch: str) -> tuple[str, ...]:
    # pip's --platform takes each tag literally: a glibc 2.28 system also runs every older manylinux tag.
    legacy = ("manylinux2014", "manylinux2010", "manylinux1") if arch == "x86_64" else ("manylinux2014",)
    return (*(f"manylinux_2_{minor}_{arch}" for minor in range(28, 4, -1)), *(f"{tag}_{arch}" for tag in legacy))


def _macos() -> tuple[str, ...]:
    versions = [f"{major}_0" for major in range(14, 10, -1)] + [f"10_{minor}" for minor in range(16, 8, -1)]
    return tuple(f"macosx_{version}_{arch}" for version in versions for arch in ("arm64", "universal2") if not (arch == "arm64" and version.startswith("10_")))


# name: (uv's --python-platform, pip's --platform tags). glibc 2.28 and macOS 14 are the oldest
# systems claimed: Debian 10+/Ubuntu 20.04+ and macOS Sonoma on Apple silicon.
PLATFORMS = {
    "linux-x86_64": ("x86_64-manylinux_2_28", _manylinux("x86_64")),
    "linux-aarch64": ("aarch64-manylinux_2_28", _manylinux("aarch64")),
    "macos-arm64": ("aarch64-apple-darwin", _macos()),
    "windows-x86_64": ("x86_64-pc-windows-msvc", ("win_amd64",)),
}
# Packages with only a source release: pip builds them (README: with requirements-build.txt's
# hashed setuptools and --no-build-isolation). Any other package without a wheel for a pair fails it.
SOURCE_ONLY = ("antlr4-python3-runtime",)


@dataclass(frozen=True)
class Pair:
    platform: str
    python: str

    def __str__(self) -> str:
        return f"{self.platform}/{self.python}"


def pairs() -> list[Pair]:
    (major, low), (_, high) = python_range()
    return [Pair(platform, f"{major}.{minor}") for platform in PLATFORMS for minor in range(low, high)]


def entries(lock: Path) -> dict[str, str]:
    """name -> its whole entry (requirement line, markers and hashes; `# via` comments dropped)."""
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text(encoding="utf-8")):
        name = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", block)
        if name and "==" in block.split("\n", 1)[0]:
            kept = [line for line in block.splitlines() if not line.strip().startswith("#")]
            found[normal(name.group(1))] = "\n".join(kept).rstrip(" \\\n")
    return found


def covered_by(lock: Path, others: Iterable[Path]) -> Path | None:
    """Another lock that holds every entry of `lock` unchanged, if any."""
    own = entries(lock)
    for other in others:
        theirs = entries(other)
        if other != lock and all(theirs.get(name) == entry for name, entry in own.items()):
            return other
    return None


def _tool_lines(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip() and "is ignored: it is neither a file" not in line]
    return "\n    ".join(lines[-12:])


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def uv_problem(lock: Path, pair: Pair, work: Path) -> str | None:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    uv_platform = PLATFORMS[pair.platform][0]
    command = [uv, "pip", "install", "--dry-run", "--require-hashes", "--python-platform", uv_platform, "--python-version", pair.python]
    result = _run([*command, "--target", str(work / "uv-target"), "-r", str(lock)], work)
    return None if result.returncode == 0 else f"{pair}: {lock.name}: uv dry run failed:\n    {_tool_lines(result)}"


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def binary_copy(lock: Path, destination: Path, skip: frozenset[str] = frozenset()) -> Path:
    """`lock` without the SOURCE_ONLY entries (and `skip`), for pip's --only-binary run."""
    kept = [entry for name, entry in entries(lock).items() if name not in SOURCE_ONLY and name not in skip]
    destination.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return destination


def pip_problem(lock: Path, pair: Pair, work: Path, skip: frozenset[str] = frozenset(), report: Path | None = None) -> str | None:
    """pip's hash check of the files `pair` would install from `lock`, less SOURCE_ONLY and `skip`."""
    binaries = binary_copy(lock, work / f"binaries-{lock.name}", skip)
    tags = [argument for tag in PLATFORMS[pair.platform][1] for argument in ("--platform", tag)]
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--only-binary=:all:", "--require-hashes"]
    command += [*tags, "--python-version", pair.python, "--implementation", "cp", "--target", str(work / "pip-target")]
    command += ["--report", str(report)] if report else []
    result = _run([*command, "-r", str(binaries)], work)
    return None if result.returncode == 0 else f"{pair}: {lock.name}: pip dry run failed:\n    {_tool_lines(result)}"


def universal_wheels(lock: Path, report: Path) -> frozenset[str]:
    """The packages of `lock` with a single wheel, pure Python (the file pip's report chose): the same file on every pair."""
    import json

    chosen = {normal(item["metadata"]["name"]): item["download_info"]["url"] for item in json.loads(report.read_text())["install"]}
    return frozenset(name for name, entry in entries(lock).items() if chosen.get(name, "").endswith("-none-any.whl") and entry.count("--hash=sha256:") <= 2)


def source_problem(lock: Path, work: Path) -> str | None:
    """The source-only packages' files against the lock's hashes (one file for every platform)."""
    sources = [entry for name, entry in entries(lock).items() if name in SOURCE_ONLY]
    if not sources:
        return None
    requirements = work / f"sources-{lock.name}"
    requirements.write_text("\n".join(sources) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary=:all:", "--no-build-isolation", "--require-hashes"]
    result = _run([*command, "-d", str(work / "sources"), "-r", str(requirements)], work)
    return None if result.returncode == 0 else f"all platforms: {lock.name}: pip download of the source-only packages failed:\n    {_tool_lines(result)}"


def check(locks: list[Path], chosen: list[Pair], jobs: int = 4) -> tuple[list[str], list[str]]:
    """(report lines, problems) for every lock on every pair in `chosen`."""
    lines, problems = [], []
    pip_locks = []
    for lock in locks:
        other = covered_by(lock, locks)
        if other is None:
            pip_locks.append(lock)
        else:
            lines.append(f"{lock.name}: every entry is in {other.name} unchanged: pip's hash check of {other.name} covers it")
    with tempfile.TemporaryDirectory(prefix="platforms-") as temporary:
        root = Path(temporary)
        counter = iter(range(1_000_000))

        def folder() -> Path:
            work = root / str(next(counter))
            work.mkdir()
            return work

        first = {lock: root / f"report-{lock.name}.json" for lock in pip_locks}
        # Round one: uv everywhere, the source-only files, and pip's full check of the first pair (with its report).
        plan = [("uv", lock, pair, lambda lock=lock, pair=pair: uv_problem(lock, pair, folder())) for pair in chosen for lock in locks]
        plan += [("source", lock, None, lambda lock=lock: source_problem(lock, folder())) for lock in pip_locks]
        plan += [("pip", lock, chosen[0], lambda lock=lock: pip_problem(lock, chosen[0], folder(), report=first[lock])) for lock in pip_locks]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            found = list(pool.map(lambda item: item[3](), plan))
        # Round two: the other pairs, without the single pure wheels the first pair already checked.
        later = []
        for lock in pip_locks:
            skip = universal_wheels(lock, first[lock]) if first[lock].is_file() else frozenset()
            later += [("pip", lock, pair, lambda lock=lock, pair=pair, skip=skip: pip_problem(lock, pair, folder(), skip)) for pair in chosen[1:]]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            found += list(pool.map(lambda item: item[3](), later))
        plan += later
    for (kind, lock, pair, _), problem in zip(plan, found, strict=True):
        where = str(pair) if pair else "all platforms"
        lines.append(f"{where:<22s} {lock.name:<22s} {kind:<6s} {'ok' if problem is None else 'FAILED'}")
        if problem:
            problems.append(problem)
    return lines, problems


def parse_pair(text: str) -> Pair:
    platform, _, python = text.partition("/")
    if platform not in PLATFORMS or not re.fullmatch(r"\d+\.\d+", python):
        raise argparse.ArgumentTypeError(f"{text!r}: want <platform>/<python>, platform one of {', '.join(PLATFORMS)}")
    return Pair(platform, python)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.tools.platforms", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", action="append", type=Path, help=f"a lock to check (default: {', '.join(LOCKS)})")
    parser.add_argument("--pair", action="append", type=parse_pair, help="one platform/Python pair (default: all of them)")
    parser.add_argument("--jobs", type=int, default=4, help="dry runs at once (default 4; they mostly wait on the index)")
    arguments = parser.parse_args(argv)
    locks = [lock.resolve() for lock in arguments.lock or [REPO / name for name in LOCKS]]
    missing = [str(lock) for lock in locks if not lock.is_file()]
    if missing:
        print(f"error: no such lock: {', '.join(missing)}", file=sys.stderr)
        return 1
    chosen = arguments.pair or pairs()
    lines, problems = check(locks, chosen, arguments.jobs)
    print("\n".join(lines))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    count = len(chosen)
    print(f"{count} platform/Python pairs, {len(locks)} locks: " + ("all pass" if not problems else f"{len(problems)} problems"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
