"""`python -m benchmarks.short_stages`: the short stages rerun alone in an up-to-date clone, timed, and
the clone checked unchanged afterwards; a clone that is not up to date is refused before anything runs."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from stages.files import read_json
from tests.conftest import REPO, clone_project, run


def short_stages(workdir: Path, out: Path, *arguments: str):
    return run([sys.executable, "-m", "benchmarks.short_stages", "--workdir", str(workdir), "--out", str(out), *arguments], REPO, check=False)


def test_each_stage_is_timed_over_the_rounds_and_the_clone_is_left_as_it_was(workflow_base: Path, tmp_path: Path) -> None:
    clone = clone_project(workflow_base, tmp_path / "clone")
    out = tmp_path / "reports" / "short_stages"
    # One stage without TensorFlow keeps this short; three rounds, so the median is one of the runs.
    result = short_stages(clone, out, "--rounds", "3", "--stages", "prepare")
    assert result.returncode == 0, result.stderr
    report = read_json(out.with_suffix(".json"))
    [row] = report["stages"]
    assert row["stage"] == "prepare" and len(row["seconds"]) == 3 and all(value > 0 for value in row["seconds"])
    assert row["median"] == statistics.median(row["seconds"])
    # prepare rewrote the data files three times: the same bytes, so nothing is changed or stale.
    assert report["changed_files"] == [] and report["changed_stages"] == []
    assert [line.split(":")[0] for line in result.stdout.splitlines()[:3]] == ["round 1", "round 2", "round 3"]
    markdown = out.with_suffix(".md").read_text()
    assert "| prepare |" in markdown and "every rerun wrote the same results" in markdown


def test_an_unknown_stage_or_a_clone_that_is_not_up_to_date_is_refused_before_anything_runs(workflow_base: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(workflow_base), str(clone)], tmp_path)  # no DVC cache: no data, no models
    out = tmp_path / "reports" / "short_stages"
    unknown = short_stages(clone, out, "--stages", "prepare", "evaluate@model9")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f"error: --stages: evaluate@model9 not declared in {clone / 'dvc.yaml'}"
    stale = short_stages(clone, out)
    assert stale.returncode == 1
    assert stale.stderr.startswith(f"error: {clone}: dvc status names ") and "prepare" in stale.stderr
    assert "round 1" not in stale.stdout and not out.parent.exists()
    missing = short_stages(tmp_path / "nowhere", out)
    assert missing.returncode == 1 and "no dvc.yaml there" in missing.stderr
