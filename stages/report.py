"""Report stage: the notebook's comparison table and a narrative report regenerated from the run.

Run: `python -m stages report --data data/prepared --eval reports/eval --training reports/training --figures reports/figures
--replicas reports/replicas --ablations reports/ablations --runs reports/runs --assets reports/report --summary-json reports/summary.json
--metrics reports/metrics.json --summary-md reports/summary.md --claims reports/claims.json --report reports/report.md`.

Writes `reports/metrics.json` (the one DVC metric: per model the few numbers a user compares, and
the claims' verdicts), `reports/summary.json` and `reports/claims.json` (every number, by model and
by claim), `reports/summary.md` (the table) and
`reports/report.md`: the data (sample digits, class counts), each model (declaration in words,
layer table, curves, weight violins, confusion matrix), the comparison table with each test
accuracy's 95% Wilson interval, McNemar's exact test for each pair of models, the spread over
seeds (main run and replicas), the notebook's six claims with verdicts (`stages/reporting/claims.py`),
observations generated under the rules in `params.yaml: report`, the most accurate model's
misclassified digits, and the environment every run was trained in (from `reports/runs/`).

`main` is four steps: `load` the inputs, `analyse` them into one typed `Results`
(stages/reporting/results.py, of which claims.json and summary.json are dumps), `draw` the figures,
`render` the Markdown (stages/reporting/wording.py).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path

import numpy as np

from stages.files import read_json, read_npz, write_json, write_text
from stages.params.report import load_report
from stages.params.training import TrainingParams
from stages.reporting import charts, figures, results, summary, wording
from stages.reporting.claims import Run, read_landscape
from stages.reporting.figures import save_figure
from stages.reporting.results import Inputs, Results
from stages.training.history import FIT_SUMMARY, read_history, read_predictions

logger = logging.getLogger(__name__)
OPTIONS = (
    "--data",
    "--eval",
    "--training",
    "--figures",
    "--replicas",
    "--ablations",
    "--runs",
    "--assets",
    "--summary-json",
    "--metrics",
    "--summary-md",
    "--claims",
    "--report",
)


def load_run(seed: int, metrics_file: Path, history_dir: Path, predictions_file: Path, labels: np.ndarray) -> Run:
    metrics = read_json(metrics_file)
    predicted = read_predictions(predictions_file)
    if len(predicted) != len(labels):
        raise ValueError(f"{predictions_file}: {len(predicted)} predictions for {len(labels)} test images")
    history = read_history(history_dir)
    return Run(
        seed=seed,
        test_accuracy=metrics["test_accuracy"],
        test_loss=metrics["test_loss"],
        train_loss=metrics["train_loss"],
        val_accuracy=tuple(history["val_accuracy"]),
        correct=predicted == labels,
        val_loss=tuple(history["val_loss"]),
        loss=tuple(history["loss"]),
        train_loss_inference=metrics["train_loss_inference"],
        most_predicted_share=metrics["most_predicted_share"],
    )


def load_runs(params: TrainingParams, args: argparse.Namespace, labels: np.ndarray) -> dict[str, list[Run]]:
    """Every model's runs, main seed first: its main run and replicas; each ablation's seeds."""

    def seeded(root: Path, name: str, seed: int) -> Run:
        directory = root / name / f"seed-{seed}"
        return load_run(seed, directory / "metrics.json", directory / "training", directory / "predictions.txt", labels)

    runs: dict[str, list[Run]] = {}
    for name in params.models:
        main_run = load_run(params.train.seed, args.eval / name / "metrics.json", args.training / name, args.eval / name / "predictions.txt", labels)
        runs[name] = [main_run, *(seeded(args.replicas, name, seed) for seed in params.replicas.seeds)]
    for name in params.ablations.models:
        seeds = sorted(params.ablations.seeds, key=lambda seed: seed != params.train.seed)
        runs[name] = [seeded(args.ablations, name, seed) for seed in seeds]
    return runs


def run_records(root: Path, params: TrainingParams) -> list[Path]:
    """The run record of every run this report reports on (as dvc.yaml names them), and no other."""
    paths = [root / "train" / f"{name}.json" for name in params.models]
    paths += [root / "replica" / f"{name}-seed-{seed}.json" for name in params.models for seed in params.replicas.seeds]
    paths += [root / "ablation" / f"{name}-seed-{seed}.json" for name in params.ablations.models for seed in params.ablations.seeds]
    return paths


def inputs_by_stage(params: TrainingParams, args: argparse.Namespace) -> dict[str, list[Path]]:
    """The outputs this report reads, by the stage that writes them (as dvc.yaml names it)."""
    wanted: dict[str, list[Path]] = {"prepare": [args.data / "train.npz", args.data / "test.npz"]}
    for name in params.models:
        run = args.eval / name
        wanted[f"train@{name}"] = [args.training / name / FIT_SUMMARY, args.runs / "train" / f"{name}.json"]
        wanted[f"evaluate@{name}"] = [run / "metrics.json", run / "predictions.txt", run / "confusion.json"]
        for seed in params.replicas.seeds:
            directory = args.replicas / name / f"seed-{seed}"
            record = args.runs / "replica" / f"{name}-seed-{seed}.json"
            wanted[f"replica@{name}-{seed}"] = [directory / "metrics.json", directory / "predictions.txt", directory / "training", record]
    for name in params.ablations.models:
        for seed in params.ablations.seeds:
            directory = args.ablations / name / f"seed-{seed}"
            record = args.runs / "ablation" / f"{name}-seed-{seed}.json"
            wanted[f"ablation@{name}-{seed}"] = [directory / "metrics.json", directory / "predictions.txt", directory / "training", record]
    return wanted


def check_inputs(params: TrainingParams, args: argparse.Namespace) -> None:
    """Stops, naming each stage whose outputs are not all there, before anything is read or written.

    `dvc repro` runs those stages before the report; a direct `python -m stages report`, or `dvc repro
    -s report` while declared seeds are still untrained, would otherwise end at the first absent file
    with a traceback."""
    wanted = inputs_by_stage(params, args)
    lines = []
    for stage, paths in wanted.items():
        absent = [path for path in paths if not path.exists()]
        if len(absent) == len(paths):
            lines.append(f"  {stage}: not run (none of its outputs is there)")
        elif absent:
            lines.append(f"  {stage}: {', '.join(path.as_posix() for path in absent)} not there")
    if lines:
        count = f"{len(lines)} stage{'s' if len(lines) > 1 else ''}"
        raise SystemExit(
            f"error: the report reads every declared run; the outputs of {count} are missing:\n" + "\n".join(lines) + "\n"
            "`dvc repro` runs them before the report (`dvc status` names them); nothing was written"
        )


def load(args: argparse.Namespace) -> Inputs:
    rules, params = load_report()
    check_inputs(params, args)
    specs = {name: params.spec(name) for name in params.models}
    test = read_npz(args.data / "test.npz")
    landscapes = {name: read_landscape(read_json(args.eval / name / "landscape.json")) for name in specs if (args.eval / name / "landscape.json").is_file()}
    return Inputs(
        rules=rules,
        params=params,
        specs=specs,
        metrics={name: read_json(args.eval / name / "metrics.json") for name in specs},
        fits={name: read_json(args.training / name / FIT_SUMMARY) for name in specs},
        histories={name: read_history(args.training / name) for name in specs},
        train=read_npz(args.data / "train.npz"),
        test=test,
        runs=load_runs(params, args, test["y"]),
        confusions={name: read_json(args.eval / name / "confusion.json") for name in specs},
        landscapes=landscapes,
        records=[read_json(path) for path in run_records(args.runs, params)],
    )


def _save(figure: object, path: Path) -> Path:
    save_figure(figure, path)
    return path


def draw(inputs: Inputs, found: Results, assets: Path) -> dict[str, Path]:
    """The report's own figures, by name: drawn from the histories, predictions and data alone (the weight
    violins are the plot stage's, which reads the model files)."""
    rules, train, test = inputs.rules, inputs.train, inputs.test
    palette = charts.colours(list(inputs.runs))
    drawn: dict[str, Path] = {}
    main_models = {name: inputs.runs[name] for name in inputs.specs}
    drawn["overview"] = _save(charts.overview(main_models, found.at_chance, palette), assets / "overview.png")
    count = min(rules.sample_digits, len(train["y"]))
    drawn["samples"] = _save(
        figures.digit_grid(train["x"][:count], [f"label {label}" for label in train["y"][:count]], f"The first {count} training images"), assets / "samples.png"
    )
    for name, rows in inputs.confusions.items():
        actual, predicted = np.array([row["actual"] for row in rows]), np.array([row["predicted"] for row in rows])
        drawn[f"{name}_confusion"] = _save(
            charts.confusion_errors(actual, predicted, f"{name}: confusion matrix (test set, main run)"), assets / f"{name}_confusion.png"
        )
        drawn[f"{name}_curves"] = _save(charts.model_curves(inputs.histories[name], inputs.runs[name], name, palette[name]), assets / f"{name}_curves.png")
    rows = inputs.confusions[found.best]
    wrong = list(found.misclassified)
    captions = [f"{rows[index]['actual']} as {rows[index]['predicted']}" for index in wrong]
    drawn["misclassified"] = _save(
        figures.digit_grid(test["x"][wrong], captions, f"{found.best}: misclassified test digits (true as predicted)"), assets / "misclassified.png"
    )
    for number, names, key, label in wording.claim_figures(rules, list(inputs.specs)):
        title = f"Claim {number}: {label}, every run"
        zoom: list[str] = []
        if number == wording.ZOOMED_CLAIM:  # the claimed best and its closest rival over seeds: the gap the verdict turns on
            # The closest rival among the runs that trained; a model none of whose runs trained is nobody's rival.
            rival = max(
                (name for name in names if name != names[0]), key=lambda name: -math.inf if math.isnan(found.accuracy[name].mean) else found.accuracy[name].mean
            )
            zoom = [names[0], rival]
        figure = charts.claim_figure({name: inputs.runs[name] for name in names}, key, found.at_chance, palette, title, label, zoom)
        path = assets / f"claim{number}_{key}.png"
        drawn[path.stem] = _save(figure, path)
    return drawn


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages report")
    for option in OPTIONS:
        parser.add_argument(option, type=Path, required=True)
    args = parser.parse_args(argv)

    inputs = load(args)
    found = results.analyse(inputs)
    drawn = draw(inputs, found, args.assets)
    base = args.report.parent

    def link(path: Path) -> str:
        return Path(os.path.relpath(path, base)).as_posix()

    write_json(args.summary_json, results.summary_json(found))
    write_json(args.claims, results.claims_json(found))
    write_json(args.metrics, results.metrics_json(found, list(inputs.specs)))
    first = next(iter(inputs.specs))
    write_text(args.summary_md, summary.summary_markdown(list(found.table), inputs.fits[first]["train_images"], inputs.metrics[first]["test_images"]))
    write_text(args.report, wording.report_markdown(inputs, found, {name: link(path) for name, path in drawn.items()}, link(args.figures), link(args.claims)))
    logger.info("%s", summary.markdown_table(list(found.table)))
    logger.info("report -> %s", args.report)
