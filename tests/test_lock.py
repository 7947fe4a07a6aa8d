"""The hashed locks agree with their sources: every top-level pin is locked at its version, and the
lock holds nothing that a source no longer asks for; they are universal, compiled for the Pythons
pyproject.toml declares, and the Python gate reads that range. No network: the files are compared as
text (tests/test_platforms.py asks the package index)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stages.__main__ import python_problem, python_range

REPO = Path(__file__).resolve().parents[1]
REGENERATE = "uv pip compile {source} --universal --generate-hashes --python-version 3.11 -o {lock} (uv is in requirements-dev.txt; see requirements.in)"
PAIRS = (("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt"), ("requirements-build.in", "requirements-build.txt"))


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.sub(r"\[.*\]", "", name)).lower()


def pins(source: Path) -> dict[str, str]:
    """`name==version` lines of a source file and of the sources it includes with `-r`."""
    found: dict[str, str] = {}
    for line in source.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(source.parent / line[3:].strip()))
        elif line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{source}: {line!r} is not pinned with =="
            found[normal(name)] = version.strip()
    return found


def locked(lock: Path) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, what it is there for: the `# via` lines of the lock)."""
    entries: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.\-\[\],]*)==(\S+)", line)
        if match:
            current = normal(match.group(1))
            entries[current] = (match.group(2), set())
        elif current and line.strip().startswith("#"):
            text = line.strip().lstrip("#").strip()
            text = text.removeprefix("via").strip()
            if text:
                entries[current][1].add(text)
    return entries


def lock_problems(root: Path, source: str, lock: str) -> list[str]:
    """Each way `lock` disagrees with `source`, with the command that regenerates it."""
    wanted, have = pins(root / source), locked(root / lock)
    fix = REGENERATE.format(source=source, lock=lock)
    problems = [f"{lock} lacks {name}, which {source} pins" for name in sorted(wanted) if name not in have]
    problems += [
        f"{lock} has {name} {have[name][0]}, {source} pins {wanted[name]}" for name in sorted(wanted) if name in have and have[name][0] != wanted[name]
    ]
    direct = {"-r requirements.in", f"-r {source}"}
    problems += [
        f"{lock} still holds {name}, which {source} no longer asks for" for name, (_, via) in sorted(have.items()) if via & direct and name not in wanted
    ]
    return [f"{problem}; regenerate it: {fix}" for problem in problems]


@pytest.mark.parametrize(("source", "lock"), PAIRS)
def test_the_lock_matches_its_source(source: str, lock: str) -> None:
    assert lock_problems(REPO, source, lock) == []


@pytest.mark.parametrize("lock", [lock for _, lock in PAIRS])
def test_every_locked_package_has_a_hash(lock: str) -> None:
    text = (REPO / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    unhashed = [block.split("==")[0] for block in blocks if "==" in block and "--hash=sha256:" not in block]
    assert not unhashed, f"{lock}: no hash for {unhashed}"


def test_the_runtime_lock_is_the_dev_locks_subset() -> None:
    # Entry by entry (version, markers, hashes): so the platform check's pip run of the dev lock covers the runtime lock.
    from stages.tools.platforms import covered_by, entries

    runtime, dev = entries(REPO / "requirements.txt"), entries(REPO / "requirements-dev.txt")
    assert {name: entry for name, entry in runtime.items() if dev.get(name) != entry} == {}
    assert covered_by(REPO / "requirements.txt", [REPO / "requirements-dev.txt"]) == REPO / "requirements-dev.txt"


@pytest.mark.parametrize("lock", [lock for _, lock in PAIRS])
def test_every_lock_is_universal_from_the_declared_lowest_python(lock: str) -> None:
    (major, minor), _ = python_range()
    header = (REPO / lock).read_text().splitlines()[1]
    assert f"--universal --generate-hashes --python-version {major}.{minor} -o {lock}" in header, header
    assert "--python-platform" not in header, f"{lock} is compiled for one platform: {header}"


def test_the_windows_only_dependencies_are_locked_with_their_markers() -> None:
    # The two a single-platform lock lacked, so that --require-hashes stopped every Windows install.
    text = (REPO / "requirements.txt").read_text()
    assert re.search(r"^pywin32==\S+ ; sys_platform == 'win32'", text, re.MULTILINE)
    assert re.search(r"^tzdata==\S+ ; .*sys_platform == 'win32'", text, re.MULTILINE)


def test_the_numerics_path_keeps_the_fingerprints_versions() -> None:
    # reports/fingerprint.json records the versions its digests were computed with; the universal lock moves none of them.
    import json

    measured = json.loads((REPO / "reports" / "fingerprint.json").read_text())["environment"]["packages"]
    have, text = locked(REPO / "requirements.txt"), (REPO / "requirements.txt").read_text()
    assert {name: have[name][0] for name in measured} == measured
    assert [name for name in measured if re.search(rf"^{name}==\\S+ ;", text, re.MULTILINE)] == [], "locked for some platforms only"


def test_the_readme_counts_the_locked_packages() -> None:
    counts = tuple(len(locked(REPO / lock)) for lock in ("requirements.txt", "requirements-dev.txt"))
    assert "top-level and transitive ({} and {})".format(*counts) in (REPO / "docs" / "install.md").read_text()


def test_the_build_lock_holds_what_the_source_only_package_needs() -> None:
    # antlr4-python3-runtime has only a source release; pip builds it with --no-build-isolation from this lock's setuptools.
    from stages.tools.platforms import SOURCE_ONLY

    assert set(SOURCE_ONLY) <= set(locked(REPO / "requirements.txt"))
    assert set(locked(REPO / "requirements-build.txt")) == {"setuptools", "pip"}


@pytest.mark.parametrize(("version", "runs"), [((3, 10, 13), False), ((3, 11, 7), True), ((3, 12, 1), True), ((3, 13, 0), True), ((3, 14, 0), False)])
def test_the_python_gate_follows_the_declared_range(version: tuple[int, int, int], runs: bool) -> None:
    problem = python_problem(version)
    assert (problem is None) == runs, problem
    if not runs:
        running = ".".join(map(str, version))
        assert problem == (
            "error: this project's locks (requirements.txt, requirements-dev.txt) are for Python >=3.11,<3.14 (pyproject.toml requires-python); "
            f"this is Python {running}. Create the venv with one of: python3.11, python3.12, python3.13."
        )


def test_the_gate_reads_the_range_from_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text((REPO / "pyproject.toml").read_text().replace('requires-python = ">=3.11,<3.14"', 'requires-python = ">=3.12,<3.13"'))
    assert python_range(pyproject) == ((3, 12), (3, 13))
    assert "python3.12." in python_problem((3, 11, 7), pyproject)
    assert python_problem((3, 12, 1), pyproject) is None
    pyproject.write_text("[project]\nname = 'x'\n")
    expected = f'error: cannot read the supported Pythons: {pyproject}: no `requires-python = ">=X.Y,<X.Z"` line in [project]'
    assert python_problem((3, 12, 1), pyproject) == expected


def test_a_changed_pin_fails_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    for name in ("requirements.in", "requirements.txt"):
        (tmp_path / name).write_text((REPO / name).read_text())
    source = tmp_path / "requirements.in"
    source.write_text(source.read_text().replace("scipy==1.17.1", "scipy==1.17.0").replace("seaborn==0.13.2\n", "") + "pyfiglet==1.0.2\n")
    problems = lock_problems(tmp_path, "requirements.in", "requirements.txt")
    assert [problem.split(";")[0] for problem in problems] == [
        "requirements.txt lacks pyfiglet, which requirements.in pins",
        "requirements.txt has scipy 1.17.1, requirements.in pins 1.17.0",
        "requirements.txt still holds seaborn, which requirements.in no longer asks for",
    ]
    assert all("regenerate it: uv pip compile requirements.in --universal --generate-hashes" in problem for problem in problems)


def test_the_xdist_groups_reach_the_scheduler(request: pytest.FixtureRequest) -> None:
    # conftest.py groups the tests for pytest-xdist's --dist loadgroup, which marks a grouped test's
    # id with its group; pytest 9.2 silently drops that mark (pytest-dev/pytest-xdist#1386), hence
    # the pytest pin. This test needs no slice run, so it is in the "no-slice-run" group.
    assert request.node.get_closest_marker("xdist_group").args == ("no-slice-run",)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        assert request.node.nodeid.endswith("@no-slice-run"), request.node.nodeid
