"""The hashed locks agree with their sources: every top-level pin is locked at its version, and the
lock holds nothing that a source no longer asks for. No network: the files are compared as text."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REGENERATE = (
    "uv pip compile {source} --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o {lock}"
    " (uv: `pip install uv==0.13.8`; see requirements.in)"
)
PAIRS = (("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt"))


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
    runtime, dev = locked(REPO / "requirements.txt"), locked(REPO / "requirements-dev.txt")
    assert {name: version for name, (version, _) in runtime.items()} == {name: dev[name][0] for name in runtime if name in dev}


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
    assert all("regenerate it: uv pip compile requirements.in --generate-hashes" in problem for problem in problems)


def test_the_xdist_groups_reach_the_scheduler(request: pytest.FixtureRequest) -> None:
    # conftest.py groups the tests for pytest-xdist's --dist loadgroup, which marks a grouped test's
    # id with its group; pytest 9.2 silently drops that mark (pytest-dev/pytest-xdist#1386), hence
    # the pytest pin. This test needs no slice run, so it is in the "no-slice-run" group.
    assert request.node.get_closest_marker("xdist_group").args == ("no-slice-run",)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        assert request.node.nodeid.endswith("@no-slice-run"), request.node.nodeid
