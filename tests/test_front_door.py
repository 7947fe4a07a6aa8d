"""The way in: the README's length and order, links that resolve, the licence, the model artifacts, and a
typo in `params.yaml` stopping `dvc repro` at its first stage."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from stages.params.base import read_yaml
from stages.tools.quick import QUICK
from tests.conftest import MODELS, REPO, dvc, git, quick_run_facts, ran_stages, run, slice_project

README_WORDS = 1500
# "Change a model" must start within the README's first CHANGE_BY words.
CHANGE_BY = 900
DOCS = sorted((REPO / "docs").glob("*.md"))


def words(text: str) -> list[str]:
    return text.split()


def test_the_readme_is_short_and_says_how_to_change_a_model_early() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(words(readme)) <= README_WORDS, f"README.md has {len(words(readme))} words, more than {README_WORDS}"
    before = readme.split("\n## Change a model", 1)
    assert len(before) == 2, "README.md has no '## Change a model' section"
    assert len(words(before[0])) < CHANGE_BY, f"'Change a model' starts at word {len(words(before[0]))}"


def test_the_readme_follows_the_users_journey() -> None:
    headings = re.findall(r"^## (.+)$", (REPO / "README.md").read_text(), flags=re.MULTILINE)
    expected = [
        "Results at a glance",
        "Quick start",
        "Change a model",
        "Compare runs",
        "The pipeline",
        "Share and scale out",
        "Reproducibility",
        "Layout",
        "Development",
    ]
    assert headings == expected


def markdown_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)  # code blocks hold commands, not links
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", [REPO / "README.md", *DOCS], ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    missing = []
    for target in markdown_links(page):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # web links and anchors within the page
        if not (page.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(REPO)} links to files that do not exist: {missing}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(REPO / target).resolve() for target in markdown_links(REPO / "README.md")}
    assert DOCS and not [page.name for page in DOCS if page.resolve() not in linked]


def test_the_licence_is_mit_and_the_notebook_is_credited() -> None:
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    assert "Convolution Neural Network in MNIST Data" in (REPO / "README.md").read_text()


def test_every_trained_model_is_a_dvc_artifact() -> None:
    """Read with DVC's own reader, as `dvc artifacts get` and Studio read them: one per model, its train output.
    In a child process: DVC's Repo sets up logging on the streams pytest captures."""
    code = (
        "import json, sys; from dvc.repo import Repo\n"
        "found = Repo(sys.argv[1]).artifacts.read()['dvc.yaml']\n"
        "print(json.dumps({name: [a.path, a.type, a.desc, a.labels] for name, a in found.items()}))"
    )
    artifacts = json.loads(run([sys.executable, "-c", code, str(REPO)], REPO).stdout)
    assert sorted(artifacts) == sorted(MODELS)
    train_outs = read_yaml((REPO / "dvc.yaml").read_text())["stages"]["train"]["do"]["outs"]
    assert "models/${key}.keras" in train_outs
    for name, (path, kind, description, labels) in artifacts.items():
        assert path == f"models/{name}.keras" and kind == "model" and description and labels, name


def test_a_typo_in_the_last_model_stops_dvc_repro_at_its_first_stage(tmp_path: Path) -> None:
    """Nothing is downloaded and no epoch runs: the first stage checks the whole params file."""
    project = slice_project(tmp_path / "project")
    params = project / "params.yaml"
    last = MODELS[-1]
    text = params.read_text()
    start = text.index(f"\n  {last}:\n")
    params.write_text(text[:start] + text[start:].replace("Conv2D", "Conv2DD", 1))
    git("commit", "-qam", f"typo in {last}", cwd=project)
    result = dvc("repro", cwd=project, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.findall(r"^Running stage '([^']+)'", output, flags=re.MULTILINE) == ["download"]
    assert f"models.{last}.layers[0]" in output and "Conv2DD" in output
    assert "stopped before this stage ran" in output
    assert "Epoch" not in output and "epoch 1" not in output
    assert not (project / "data" / "raw" / "mnist.npz").exists() and not (project / "data" / "prepared" / "train.npz").exists()


def test_the_quick_run_runs_every_stage_and_leaves_the_workspace_clean(pipeline_run: Path) -> None:
    """The test suite's slice run is the quick run (`run_slice`): every stage ran in the experiment, the
    workspace was untouched, `dvc exp list` named it, and the output ends with its summary and the next commands."""
    facts = quick_run_facts(pipeline_run)
    declared = set(dvc("stage", "list", "--name-only", cwd=pipeline_run).stdout.split())
    assert ran_stages(facts["output"]) == declared
    assert facts["git_status"] == ""
    assert "quick" in facts["experiments"]
    summary = facts["output"].split("Its summary", 1)[1]
    assert all(f"| {name} |" in summary for name in MODELS)
    assert "dvc exp remove quick" in summary and re.search(r"git show refs/exps/\S+/quick:reports/report\.md", summary)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-S", "train.epochs"], "error: -S 'train.epochs': expected KEY=VALUE, as for `dvc exp run -S`"),
        (["--name", "taken"], "error: an experiment named 'taken' of this commit exists: `dvc exp remove taken` drops it, or pass --name"),
    ],
)
def test_the_quick_run_refuses_bad_input_before_running_anything(tmp_path: Path, arguments: list[str], message: str) -> None:
    project = slice_project(tmp_path / "project")
    head = git("rev-parse", "HEAD", cwd=project).stdout.strip()
    git("update-ref", f"refs/exps/{head[:2]}/{head[2:]}/taken", head, cwd=project)
    result = run([sys.executable, "-m", "stages.tools.quick", *arguments], project, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == message and "Running stage" not in result.stdout
    assert git("status", "--porcelain", cwd=project).stdout == ""


def test_the_readme_and_docs_quote_the_benchmark_reports() -> None:
    """The run times the README and docs/ quote are the committed benchmark reports' numbers."""
    benchmarks = REPO / "reports" / "benchmarks"
    full = json.loads((benchmarks / "full_repro.json").read_text())
    quick = json.loads((benchmarks / "quick_run.json").read_text())
    makespan = json.loads((benchmarks / "cluster_makespan.json").read_text())
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"{full['minutes']} minutes on a 2-core AMD EPYC" in readme and "AMD EPYC" in full["machine"]
    assert f"{quick['minutes']:.1f} minutes on a 2-core Intel Xeon" in readme and "Intel(R) Xeon(R)" in quick["machine"]
    assert f"`prepare.train_size={QUICK['prepare.train_size']}`" in (benchmarks / "quick_run.md").read_text()
    trained = {stage["stage"]: stage["seconds"] for stage in full["stages"]}
    training = " / ".join(f"{trained[f'train@{name}']:,.1f}" for name in MODELS)
    pipeline = " ".join((REPO / "docs" / "pipeline.md").read_text().split())
    assert f"{full['minutes']} minutes, of which training {training} s for Models 1-4" in pipeline
    cluster = " ".join((REPO / "docs" / "cluster.md").read_text().split())
    hours = {row["workers"]: f"{row['hours']:.2f}" for row in makespan["rows"]}
    assert f"({makespan['stages']} stages, {hours[1]} hours of work" in cluster
    assert f"{hours[2]} hours on 2 workers, {hours[4]} on 4, {hours[8]} on 8 and {hours[16]} on 16" in cluster
    assert f"takes {makespan['critical_path_seconds'] / 60:.0f} minutes" in cluster
