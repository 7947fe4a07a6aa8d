"""End to end: the real `dvc repro` on a slice, in a throwaway git copy of the project.

Checks that every output `dvc.yaml` declares exists and is sane, that DVC reads the metrics and
renders the plots, that a second `dvc repro` has nothing to do, and that a params typo stops the
pipeline before any training with the key path in the message.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages.data import mnist
from stages.params.base import read_yaml
from tests.conftest import ABLATIONS, DATA, MODELS, SLICE, clone_project, dvc, local_project

REPLICAS = {*(f"replica@{model}-1" for model in MODELS), *(f"ablation@{name}-{seed}" for name in ABLATIONS for seed in (0, 1))}
STAGES = {
    "download",
    "prepare",
    *(f"{stage}@{model}" for stage in ("train", "evaluate", "plot") for model in MODELS),
    *(f"variant@{name}" for name in ABLATIONS),
    *REPLICAS,
    "report",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_every_stage_ran_and_is_locked(pipeline_run: Path) -> None:
    lock = read_yaml((pipeline_run / "dvc.lock").read_text())
    assert set(lock["stages"]) == STAGES
    for name in MODELS:
        assert lock["stages"][f"train@{name}"]["params"]["params.yaml"]["train.epochs"] == 1
        assert set(lock["stages"][f"train@{name}"]["params"]["params.yaml"]) == {"train.epochs", "train.batch_size", "train.seed", f"models.{name}", "numerics"}


def test_replicas_differ_from_the_main_run_only_in_the_seed(pipeline_run: Path) -> None:
    lock = read_yaml((pipeline_run / "dvc.lock").read_text())
    labels = np.load(pipeline_run / "data/prepared/test.npz")["y"]
    for name in MODELS:
        replica = pipeline_run / f"reports/replicas/{name}/seed-1"
        main_fit = json.loads((pipeline_run / f"reports/training/{name}/fit.json").read_text())
        fit = json.loads((replica / "training/fit.json").read_text())
        assert (fit["seed"], main_fit["seed"]) == (1, 0)
        assert {key: value for key, value in fit.items() if key not in ("seed", "train_seconds", "epoch_seconds")} == {
            key: value for key, value in main_fit.items() if key not in ("seed", "train_seconds", "epoch_seconds")
        }
        assert set(lock["stages"][f"replica@{name}-1"]["params"]["params.yaml"]) == {"train.epochs", "train.batch_size", f"models.{name}", "numerics"}
        assert sorted(path.name for path in (pipeline_run / "models").glob("*.keras")) == [f"{model}.keras" for model in MODELS]
        # The replica's metrics agree with its own predictions, which differ from the main run's.
        predicted = np.frombuffer((replica / "predictions.txt").read_text().strip().encode(), dtype=np.uint8) - ord("0")
        metrics = json.loads((replica / "metrics.json").read_text())
        assert metrics["seed"] == 1 and len(predicted) == SLICE["test_size"]
        assert np.mean(predicted == labels) == pytest.approx(metrics["test_accuracy"], abs=1e-3)
    model1_main = (pipeline_run / "reports/eval/model1/predictions.txt").read_text()
    assert (pipeline_run / "reports/replicas/model1/seed-1/predictions.txt").read_text() != model1_main
    for name in ABLATIONS:
        for seed in (0, 1):
            assert json.loads((pipeline_run / f"reports/ablations/{name}/seed-{seed}/training/fit.json").read_text())["seed"] == seed
    # Timings and environment live in the run records, apart from what evaluate, plot and report read.
    for stage, name in (("train", "model1"), ("replica", "model1-seed-1"), ("ablation", "model2_adam-seed-0")):
        record = json.loads((pipeline_run / f"reports/runs/{stage}/{name}.json").read_text())
        assert record["train_seconds"] > 0 and len(record["epoch_seconds"]) == 1
        assert record["environment"]["packages"]["tensorflow"] and record["environment"]["python"].startswith("3.")


def test_model1_learns_from_one_epoch_of_4000_images(tmp_path: Path, raw_mnist: Path) -> None:
    """The slice is too small to learn from in one epoch; 4,000 images are enough for Model 1."""
    project = local_project(tmp_path / "project", raw_mnist / "mnist.npz", prepare={"train_size": 4000, "test_size": 1000})
    dvc("repro", "evaluate@model1", cwd=project)
    metrics = json.loads((project / "reports/eval/model1/metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.60  # 81% seen on seed 0


def test_prepared_data_is_the_normalised_slice(pipeline_run: Path) -> None:
    with np.load(pipeline_run / "data/prepared/train.npz", allow_pickle=False) as train:
        assert train["x"].shape == (SLICE["train_size"], 28, 28, 1)
        assert train["x"].dtype == np.float32
        assert 0.0 == train["x"].min() and train["x"].max() == 1.0
        assert list(train["y"][:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    provenance = json.loads((pipeline_run / "data/raw/provenance.json").read_text())
    # The digests recorded are those of MNIST itself, whichever source gave it.
    assert provenance["array_sha256"] == mnist.EXPECTED_SHA256


def test_summary_metric_and_table(pipeline_run: Path) -> None:
    summary = json.loads((pipeline_run / "reports/summary.json").read_text())
    assert list(summary) == [*MODELS, *ABLATIONS]
    # runs_at_chance counts the seeds whose own metrics.json is at or below the report's chance threshold.
    chance = read_yaml((pipeline_run / "params.yaml").read_text())["report"]["chance_accuracy"]
    seed_metrics = {
        **{name: [pipeline_run / f"reports/eval/{name}/metrics.json", pipeline_run / f"reports/replicas/{name}/seed-1/metrics.json"] for name in MODELS},
        **{name: [pipeline_run / f"reports/ablations/{name}/seed-{seed}/metrics.json" for seed in (0, 1)] for name in ABLATIONS},
    }
    compact = json.loads((pipeline_run / "reports/metrics.json").read_text())
    for name, paths in seed_metrics.items():
        accuracies = [json.loads(path.read_text())["test_accuracy"] for path in paths]
        failed = sum(accuracy <= chance for accuracy in accuracies)
        assert summary[name]["runs_at_chance"] == compact[name]["failed"] == failed, name
        # The mean and sd are over the runs that trained; a failed run is counted, not averaged in.
        trained = [accuracy for accuracy in accuracies if accuracy > chance]
        mean = pytest.approx(sum(trained) / len(trained), abs=1e-6) if trained else None
        assert summary[name]["test_accuracy_mean"] == mean and compact[name]["acc_mean"] == mean, name
        sd = pytest.approx(abs(trained[0] - trained[1]) / 2**0.5, abs=1e-6) if len(trained) == 2 else None
        assert summary[name]["test_accuracy_sd"] == sd and compact[name]["acc_sd"] == sd, name
        assert summary[name]["seeds"] == 2
    assert set(compact["claims"]) == {str(number) for number in range(1, 7)}
    for name in ABLATIONS:
        assert set(summary.pop(name)) == {"seeds", "test_accuracy_mean", "test_accuracy_sd", "test_loss_mean", "test_loss_sd", "runs_at_chance"}
    for name, metrics in summary.items():
        assert compact[name]["acc"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    counts = {"model1": 3_314_186, "model2": 1_199_882, "model3": 1_199_882, "model4": 1_358_858}
    for name, metrics in summary.items():
        assert {"test_accuracy", "test_loss", "train_accuracy", "train_loss", "params", "epochs"} <= set(metrics)
        assert "train_seconds" not in metrics
        assert metrics["params"] == counts[name]
        assert metrics["epochs"] == 1
        assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    # Model 3 (sigmoid + SGD) stays near chance; on this slice the others do too (see the next test).
    assert summary["model3"]["test_accuracy"] < 0.30
    table = (pipeline_run / "reports/summary.md").read_text()
    for name in MODELS:
        assert f"| {name} |" in table


def test_report_links_resolve_to_committable_files(pipeline_run: Path) -> None:
    report = (pipeline_run / "reports/report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    # The overview, sample digits, per model its curves, confusion and weights, the misclassified digits,
    # and the claims' figures (claims 2, 5 and 6, and claim 4's validation-accuracy and training-loss views).
    assert len(links) == 1 + 1 + 3 * len(MODELS) + 1 + 5
    for link in links:
        target = pipeline_run / "reports" / link
        assert target.is_file() and target.read_bytes().startswith(PNG_SIGNATURE), link
        ignored = subprocess.run(["git", "check-ignore", "-q", str(target)], cwd=pipeline_run)
        assert ignored.returncode == 1, f"{link} is ignored by git"
    for name in MODELS:
        assert f"### {name}" in report
    assert "Total params: 3,314,186 · Trainable params: 3,314,122 · Non-trainable params: 64" in report
    assert "## Observations on the main run" in report and "failed to learn" in report
    claims = report[report.index("## The claims' evidence") :].split("\n## ")[0]
    rows = [line for line in claims.splitlines() if re.match(r"\| [1-6] \|", line)]
    assert len(rows) == 6
    assert "## Environment" in report and "| CPU | Runs trained | Instruction-set flags | Unused under the pinned numerics |" in report
    assert all(re.search(r"\*\*(supported|not supported|inconclusive|inconclusive: measures disagree|not evaluated)\*\* \|$", row) for row in rows)
    pairs = report[report.index("McNemar's exact test for each pair") :].split("\n## ")[0]
    assert len([line for line in pairs.splitlines() if re.match(r"\| model", line)]) == 15  # 6 models and ablations, every pair


def test_evaluation_outputs(pipeline_run: Path) -> None:
    for name in MODELS:
        rows = json.loads((pipeline_run / f"reports/eval/{name}/confusion.json").read_text())
        assert len(rows) == SLICE["test_size"]
        assert set(rows[0]) == {"actual", "predicted"}
        metrics = json.loads((pipeline_run / f"reports/eval/{name}/metrics.json").read_text())
        correct = sum(row["actual"] == row["predicted"] for row in rows) / len(rows)
        assert correct == pytest.approx(metrics["test_accuracy"], abs=1e-3)
        per_class = json.loads((pipeline_run / f"reports/eval/{name}/class_accuracy.json").read_text())
        assert list(per_class) == [str(digit) for digit in range(10)]


def test_history_has_one_row_per_epoch(pipeline_run: Path) -> None:
    for name in MODELS:
        for split in ("train", "eval"):
            for metric in ("loss", "accuracy"):
                lines = (pipeline_run / f"reports/training/{name}/plots/metrics/{split}/{metric}.tsv").read_text().splitlines()
                assert lines[0].split("\t")[-1] == metric and len(lines) == 2


def test_figures_are_png(pipeline_run: Path) -> None:
    for name in MODELS:
        for figure in ("loss", "accuracy", "weights"):
            data = (pipeline_run / f"reports/figures/{name}/{figure}.png").read_bytes()
            assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000


def test_repro_again_does_nothing_and_status_is_clean(pipeline_run: Path) -> None:
    result = dvc("repro", cwd=pipeline_run)
    assert "Running stage" not in result.stdout
    assert "Data and pipelines are up to date" in result.stdout
    assert "up to date" in dvc("status", cwd=pipeline_run).stdout


def test_dvc_reads_metrics_and_draws_plots(pipeline_run: Path, tmp_path: Path) -> None:
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=pipeline_run).stdout)
    workspace = metrics[""]["data"]
    assert 0 <= workspace["reports/metrics.json"]["data"]["model4"]["acc"] <= 1
    assert set(workspace) == {"reports/metrics.json", *(f"reports/eval/{name}/metrics.json" for name in MODELS)}
    dvc("plots", "show", "-o", str(tmp_path / "plots"), cwd=pipeline_run)
    page = (tmp_path / "plots/index.html").read_text()
    for title in ("model1 loss", "model4 accuracy", "validation loss, all models", "model2 confusion matrix"):
        assert title in page, title
    images = sorted(path.name for path in (tmp_path / "plots/static").iterdir())
    assert len(images) == 12


def test_dag_shows_every_stage(pipeline_run: Path) -> None:
    dag = dvc("dag", "--md", cwd=pipeline_run).stdout
    for stage in STAGES:
        assert stage in dag


def test_params_typo_fails_before_training(tmp_path: Path, prepared_slice: Path) -> None:
    project = clone_project(prepared_slice, tmp_path / "project", *DATA)
    params = read_yaml((project / "params.yaml").read_text())
    params["models"]["model1"]["layers"][1]["Conv2D"]["filters"] = "64"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc("repro", "train@model1", cwd=project, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "models.model1.layers[1].Conv2D.filters: expected an integer, got '64'" in output
    assert "epoch 1/" not in output
    assert not (project / "models/model1.keras").exists()
