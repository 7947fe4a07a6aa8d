"""Every platform/Python pair the locks cover, checked against the configured package index without
being on it (`python -m stages.tools.platforms`): both dry runs pass for the committed locks, and a
doctored copy fails naming the pair and the package, each doctoring caught by the run that can see it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stages.tools import platforms
from stages.tools.platforms import Pair, entries

REPO = Path(__file__).resolve().parents[1]


def test_every_pair_passes_both_dry_runs() -> None:
    assert len(platforms.pairs()) == 12
    lines, problems = platforms.check([REPO / "requirements.txt", REPO / "requirements-dev.txt"], platforms.pairs())
    assert problems == []
    assert "requirements.txt: every entry is in requirements-dev.txt unchanged: pip's hash check of requirements-dev.txt covers it" in lines
    checked = [line.split()[:3] for line in lines if line.endswith(" ok")]
    for pair in platforms.pairs():
        assert [str(pair), "requirements.txt", "uv"] in checked and [str(pair), "requirements-dev.txt", "uv"] in checked
        assert [str(pair), "requirements-dev.txt", "pip"] in checked
    assert ["all", "platforms", "requirements-dev.txt"] in checked


def test_a_missing_platform_only_dependency_fails_the_pair_naming_the_package(tmp_path: Path) -> None:
    kept = {name: entry for name, entry in entries(REPO / "requirements.txt").items() if name != "pywin32"}
    doctored = tmp_path / "requirements.txt"
    doctored.write_text("\n".join(kept.values()) + "\n")
    windows, linux = Pair("windows-x86_64", "3.12"), Pair("linux-x86_64", "3.12")
    problem = platforms.uv_problem(doctored, windows, tmp_path)
    assert problem is not None and problem.startswith("windows-x86_64/3.12: requirements.txt: uv dry run failed:")
    assert "pywin32" in problem
    assert platforms.uv_problem(doctored, linux, tmp_path) is None  # Linux never needs it


def test_a_forged_hash_fails_the_pair_naming_the_package(tmp_path: Path) -> None:
    # Two small wheels, one hash of each forged; pip checks the file the pair would install.
    chosen = entries(REPO / "requirements.txt")
    good, forged = chosen["six"], re.sub(r"sha256:([0-9a-f])", lambda m: "sha256:" + ("0" if m.group(1) != "0" else "1"), chosen["idna"])
    doctored = tmp_path / "requirements.txt"
    doctored.write_text(f"{good}\n{forged}\n")
    problem = platforms.pip_problem(doctored, Pair("macos-arm64", "3.13"), tmp_path)
    assert problem is not None and problem.startswith("macos-arm64/3.13: requirements.txt: pip dry run failed:")
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in problem and "idna==" in problem and "six" not in problem
    doctored.write_text(f"{good}\n")
    assert platforms.pip_problem(doctored, Pair("macos-arm64", "3.13"), tmp_path) is None


def test_the_command_names_a_bad_pair_and_a_missing_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        platforms.main(["--pair", "beos-x86/3.12"])
    assert exit_.value.code == 2
    assert "'beos-x86/3.12': want <platform>/<python>, platform one of linux-x86_64, linux-aarch64, macos-arm64, windows-x86_64" in capsys.readouterr().err
    assert platforms.main(["--lock", str(tmp_path / "nope.txt")]) == 1
    assert capsys.readouterr().err == f"error: no such lock: {tmp_path / 'nope.txt'}\n"
