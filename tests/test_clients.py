"""What the DVC extension for VS Code reads, checked on a slice run.

The extension draws its experiments table, plots and data views from four commands' output: `dvc exp
show --json`, `dvc plots diff <revisions> --json --split -o <dir>`, `dvc data status --granular
--unchanged --json` and `dvc dag --md`. A project it cannot read is a project half its users cannot
browse, so each command's content is checked here, not only its exit status.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ABLATIONS, MODELS, cached_outputs, clone_project, dvc


@pytest.fixture(scope="module")
def project(workflow_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clone_project(workflow_base, tmp_path_factory.mktemp("clients") / "project")


def test_exp_show_json_has_every_models_metrics_and_params(project: Path) -> None:
    shown = json.loads(dvc("exp", "show", "--json", cwd=project).stdout)
    workspace = next(row for row in shown if row["rev"] == "workspace")
    assert workspace.get("error") is None
    data = workspace["data"]
    metrics = data["metrics"]
    for name in MODELS:
        evaluation = metrics[f"reports/eval/{name}/metrics.json"]["data"]
        assert 0.0 <= evaluation["test_accuracy"] <= 1.0 and evaluation["test_loss"] > 0
    compact = metrics["reports/metrics.json"]["data"]
    assert set(compact) == {*MODELS, *ABLATIONS, "claims"} and set(compact["claims"]) == {str(number) for number in range(1, 7)}
    # A value that is null (no trained run to average on a one-epoch slice) may be left out of DVC's JSON.
    assert all({"acc", "loss", "failed"} <= set(compact[name]) <= {"acc", "loss", "acc_mean", "acc_sd", "failed"} for name in MODELS), compact
    assert set(data["params"]["params.yaml"]["data"]["models"]) == set(MODELS)


def test_plots_diff_json_lists_every_plot_with_data_and_no_errors(project: Path, tmp_path: Path) -> None:
    output = tmp_path / "plots"
    result = dvc("plots", "diff", "HEAD", "--json", "--split", "-o", str(output), cwd=project)
    shown = json.loads(result.stdout)
    assert "errors" not in shown, shown.get("errors")
    plots = shown["data"]

    # dvc.yaml's top-level plots: named charts of the training histories, and the figures folder.
    entries = yaml.safe_load((project / "dvc.yaml").read_text())["plots"]
    declared = [next(iter(entry)) for entry in entries if isinstance(entry, dict)]
    assert [entry for entry in entries if isinstance(entry, str)] == ["reports/figures"]
    figures = [f"reports/figures/{name}/{figure}.png" for name in MODELS for figure in ("accuracy", "loss", "weights")]
    confusions = [f"reports/eval/{name}/confusion.json" for name in MODELS]
    assert set(plots) == {*declared, *figures, *confusions}

    test_size = yaml.safe_load((project / "params.yaml").read_text())["prepare"]["test_size"]
    for name in [*declared, *confusions]:
        (entry,) = plots[name]
        assert entry["type"] == "vega" and set(entry["revisions"]) == {"HEAD", "workspace"}, name
        points = entry["anchor_definitions"]["<DVC_METRIC_DATA>"]
        assert {point["rev"] for point in points} == {"HEAD", "workspace"}, name
        if name in confusions:
            assert len(points) == 2 * test_size, name
    for name in figures:
        urls = {Path(entry["url"]).name for entry in plots[name]}
        assert len(urls) == 2, name
        for entry in plots[name]:
            assert Path(entry["url"]).read_bytes().startswith(b"\x89PNG"), entry["url"]


def test_data_status_lists_every_cached_output_unchanged(project: Path) -> None:
    status = json.loads(dvc("data", "status", "--granular", "--unchanged", "--json", cwd=project).stdout)
    assert set(status) == {"unchanged"}, status
    assert set(status["unchanged"]) == set(cached_outputs(project))

    (project / "models" / "model2.keras").unlink()
    status = json.loads(dvc("data", "status", "--granular", "--unchanged", "--json", cwd=project).stdout)
    assert status["uncommitted"] == {"deleted": ["models/model2.keras"]}
    dvc("checkout", "-q", "models/model2.keras", cwd=project)


def test_dag_md_is_a_mermaid_graph_of_every_stage(project: Path) -> None:
    markdown = dvc("dag", "--md", cwd=project).stdout
    assert markdown.startswith("```mermaid\nflowchart TD")
    nodes = set(re.findall(r'node\d+\["([^"]+)"\]', markdown))
    assert nodes == set(dvc("stage", "list", "--name-only", cwd=project).stdout.split())
    assert nodes == set(yaml.safe_load((project / "dvc.lock").read_text())["stages"])
    edges = re.findall(r"(node\d+)-->(node\d+)", markdown)
    names = dict(re.findall(r'(node\d+)\["([^"]+)"\]', markdown))
    assert ("train@model1", "evaluate@model1") in {(names[a], names[b]) for a, b in edges}
