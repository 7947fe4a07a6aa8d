"""Report stage: the notebook's comparison table and a narrative report regenerated from the run.

Run: `python -m stages report --data data/prepared --eval reports/eval --training reports/training --figures reports/figures
--replicas reports/replicas --ablations reports/ablations --runs reports/runs --assets reports/report --summary-json reports/summary.json
--summary-md reports/summary.md --claims reports/claims.json --report reports/report.md`.

Writes `reports/summary.json` (a DVC metric keyed by model), `reports/summary.md` (the table) and
`reports/report.md`: the data (sample digits, class counts), each model (declaration in words,
layer table, curves, weight violins, confusion matrix), the comparison table with each test
accuracy's 95% Wilson interval, McNemar's exact test for each pair of models, the spread over
seeds (main run and replicas), the notebook's six claims with verdicts (`stages/reporting/claims.py`),
observations generated under the rules in `params.yaml: report`, and the most accurate model's
misclassified digits, and the environment every run was trained in (from `reports/runs/`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from stages.files import read_json, read_npz, write_json, write_text
from stages.params.report import load_report
from stages.params.training import TrainingParams
from stages.reporting import claims, figures, narrative, summary
from stages.reporting.claims import Run
from stages.reporting.figures import save_figure
from stages.reporting.stats import McNemar, format_p, holm, mcnemar_exact, wilson_interval
from stages.training.history import FIT_SUMMARY, read_history, read_predictions

logger = logging.getLogger(__name__)


def layer_totals(fit: dict[str, Any]) -> dict[str, int]:
    """The totals under `model.summary()`, from what the train stage recorded in `fit.json`."""
    return {"total": fit["params"], "trainable": fit["trainable_params"], "non_trainable": fit["params"] - fit["trainable_params"]}


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


def prior_cross_entropy(labels: np.ndarray) -> float:
    """The test loss of a model that predicts the test set's class frequencies for every image."""
    frequencies = np.bincount(labels, minlength=10) / len(labels)
    present = frequencies[frequencies > 0]
    return float(-(present * np.log(present)).sum())


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


def environment_section(records: list[dict[str, Any]]) -> list[str]:
    """Each distinct environment the runs were trained in, once, with the runs that used it."""
    groups: dict[str, list[str]] = {}
    shown: dict[str, dict[str, Any]] = {}
    for record in records:
        environment = record.get("environment") or {}
        key = json.dumps(environment, sort_keys=True)
        shown[key] = environment
        groups.setdefault(key, []).append(f"{record['stage']}@{record['model']}" + (f"-{record['seed']}" if record["stage"] != "train" else ""))
    lines = ["## Environment", "", "What each run was trained on (its run record in `reports/runs/`, beside its timings)."]
    for key, names in groups.items():
        environment = shown[key]
        packages = ", ".join(f"{name} {version or 'unknown'}" for name, version in (environment.get("packages") or {}).items())
        lines += [
            "",
            f"- Python {environment.get('python')}, {packages}; {environment.get('platform')}, {environment.get('cpu')} "
            f"({environment.get('cpu_count')} cores; {', '.join(environment.get('cpu_flags') or []) or 'no listed features'}); "
            f"bf16 instructions: {'yes' if environment.get('bf16_instructions') else 'no'}; oneDNN ISA cap: {environment.get('onednn_isa_cap') or 'none'}. "
            f"{len(names)} run{'s' if len(names) != 1 else ''}: {', '.join(sorted(names))}."
            + (f" Recorded {environment['recorded']}." if environment.get("recorded") else ""),
        ]
    return lines


def pair_tests(runs: dict[str, list[Run]]) -> dict[tuple[str, str], McNemar]:
    """McNemar's exact test on the main seed for every pair of models and ablations."""
    names = list(runs)
    return {
        (first, second): mcnemar_exact(runs[first][0].correct, runs[second][0].correct) for index, first in enumerate(names) for second in names[index + 1 :]
    }


def uncertainty_section(runs: dict[str, list[Run]], tests: dict[tuple[str, str], McNemar], seed: int) -> list[str]:
    lines = [
        "## How sure: one run's uncertainty",
        "",
        f"Test accuracy on the main seed ({seed}) with its 95% Wilson score interval over the test images.",
        "",
        "| Model | Test accuracy | 95% interval | Errors |",
        "|---|--:|---|--:|",
    ]
    for name, model_runs in runs.items():
        correct = model_runs[0].correct
        right = int(correct.sum())
        low, high = wilson_interval(right, len(correct))
        interval = f"{summary.percent(low)} - {summary.percent(high)}"
        lines.append(f"| {name} | {summary.percent(model_runs[0].test_accuracy)} | {interval} | {len(correct) - right:,} |")
    lines += [
        "",
        "McNemar's exact test for each pair, on the same test images: the images only the first model gets right, "
        f"those only the second gets right, the two-sided p-value (exact binomial on those two counts) and that p adjusted with Holm's "
        f"method over the {len(tests)} pairs. A p below what a float holds prints as a bound.",
        "",
        "| First | Second | Only first right | Only second right | p | Holm p |",
        "|---|---|--:|--:|--:|--:|",
    ]
    adjusted = holm([test.p_value for test in tests.values()])
    lines += [
        f"| {first} | {second} | {test.only_first} | {test.only_second} | {format_p(test.p_value)} | {format_p(holm_p)} |"
        for ((first, second), test), holm_p in zip(tests.items(), adjusted, strict=True)
    ]
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages report")
    options = ("--data", "--eval", "--training", "--figures", "--replicas", "--ablations", "--runs", "--assets")
    options += ("--summary-json", "--summary-md", "--claims", "--report")
    for option in options:
        parser.add_argument(option, type=Path, required=True)
    args = parser.parse_args(argv)

    rules, params = load_report()
    models = {name: params.spec(name) for name in params.models}
    metrics = {name: read_json(args.eval / name / "metrics.json") for name in models}
    fits = {name: read_json(args.training / name / FIT_SUMMARY) for name in models}
    histories = {name: read_history(args.training / name) for name in models}
    table = summary.rows(models, metrics, fits)
    first = next(iter(models))
    train, test = read_npz(args.data / "train.npz"), read_npz(args.data / "test.npz")
    runs = load_runs(params, args, test["y"])
    tests = pair_tests(runs)

    def pair_test(first_name: str, second_name: str) -> McNemar:
        if (first_name, second_name) in tests:
            return tests[(first_name, second_name)]
        swapped = tests[(second_name, first_name)]
        return McNemar(swapped.only_second, swapped.only_first, swapped.p_value)

    accuracy_spread = {name: claims.spread(model_runs, lambda run: run.test_accuracy) for name, model_runs in runs.items()}
    loss_spread = {name: claims.spread(model_runs, lambda run: run.test_loss) for name, model_runs in runs.items()}
    write_json(args.summary_json, summary.metrics_by_model(table, accuracy_spread, loss_spread))
    decided = claims.evaluate_claims(runs, rules, list(models), prior_cross_entropy(test["y"]))
    write_json(args.claims, claims.evidence_metrics(decided))
    write_text(args.summary_md, summary.summary_markdown(table, fits[first]["train_images"], metrics[first]["test_images"]))

    base = args.report.parent

    def link(path: Path) -> str:
        return Path(os.path.relpath(path, base)).as_posix()

    samples = args.assets / "samples.png"
    count = min(rules.sample_digits, len(train["y"]))
    save_figure(figures.digit_grid(train["x"][:count], [f"label {label}" for label in train["y"][:count]], f"The first {count} training images"), samples)

    sections = [
        "# MNIST CNNs: the run, model by model",
        "",
        "Generated by the `report` stage of `dvc repro` from this run's metrics; edit `params.yaml`, not this file.",
        "",
        "## Data",
        "",
        f"{len(train['y']):,} training and {len(test['y']):,} test images, 28x28 grey levels scaled to [0, 1]. "
        "The validation curves are computed on the test images, as in the notebook (`validation_data=(x_test, y_test)`): "
        "no choice in this pipeline is made on them, but the curves are not an independent held-out estimate, and a "
        "model picked by its validation curve would be picked on the test set.",
        "",
        f"![The first {count} training images with their labels]({link(samples)})",
        "",
        narrative.class_count_table(np.bincount(train["y"], minlength=10).tolist(), np.bincount(test["y"], minlength=10).tolist()),
        "",
        "## Models",
    ]
    confusions = {}
    for name, spec in models.items():
        # The layer table is the one the train stage recorded from the model it trained.
        layers, totals = fits[name]["layers"], layer_totals(fits[name])
        confusions[name] = read_json(args.eval / name / "confusion.json")
        actual = np.array([row["actual"] for row in confusions[name]])
        predicted = np.array([row["predicted"] for row in confusions[name]])
        confusion = args.assets / f"{name}_confusion.png"
        save_figure(figures.confusion_heatmap(actual, predicted, f"{name}: confusion matrix (test set)"), confusion)
        result = metrics[name]
        sections += [
            "",
            f"### {name}",
            "",
            narrative.declaration_in_words(spec, summary.describe(spec), fits[name]),
            "",
            narrative.layer_table(layers, totals),
            "",
            f"Test accuracy {100 * result['test_accuracy']:.2f}%, test loss {result['test_loss']:.4f}; "
            f"last-epoch train accuracy {100 * result['train_accuracy']:.2f}%, train loss {result['train_loss']:.4f}.",
            "",
            f"![{name} loss per epoch]({link(args.figures / name / 'loss.png')}) ![{name} accuracy per epoch]({link(args.figures / name / 'accuracy.png')})",
            "",
            f"![{name} trained weights per layer]({link(args.figures / name / 'weights.png')})",
            "",
            f"![{name} confusion matrix]({link(confusion)})",
        ]

    best = max(table, key=lambda row: row["test_accuracy"])["model"]
    rows = confusions[best]
    wrong = [index for index, row in enumerate(rows) if row["actual"] != row["predicted"]][: rules.misclassified_digits]
    misclassified = args.assets / "misclassified.png"
    captions = [f"{rows[index]['actual']} as {rows[index]['predicted']}" for index in wrong]
    save_figure(figures.digit_grid(test["x"][wrong], captions, f"{best}: misclassified test digits (true as predicted)"), misclassified)

    claim_figures: list[str] = []
    named = rules.claims
    for number, names, key, label in (
        (2, named.better, "val_accuracy", "validation accuracy (%)"),
        (4, named.faster_convergence, "val_accuracy", "validation accuracy (%)"),
        (4, named.faster_convergence, "loss", "training loss"),
        (5, [named.best, *(name for name in models if name not in (named.best, named.stuck))], "val_accuracy", "validation accuracy (%)"),
        (6, named.best_optimizer, "val_accuracy", "validation accuracy (%)"),
    ):
        scale = 100.0 if key == "val_accuracy" else 1.0
        series = {name: [getattr(run, key) for run in runs[name]] for name in names}
        path = args.assets / f"claim{number}_{key}.png"
        save_figure(figures.seed_bands(series, f"Claim {number}: {label}, mean and range over seeds", label, scale), path)
        claim_figures += [f"![Claim {number}: {label} per epoch, mean and range over seeds]({link(path)})", ""]

    sections += [
        "",
        "## Comparison",
        "",
        summary.markdown_table(table),
        *uncertainty_section(runs, tests, params.train.seed),
        "",
        "## Seed to seed",
        "",
        f"Each model trained at seeds {', '.join(str(run.seed) for run in next(iter(runs.values())))} "
        "(the main run and the `replica` stages; ablations at the same seeds). Standard deviations are sample ones (n - 1); "
        "epochs to the threshold are listed per seed, `never` where a run did not reach it.",
        "",
        claims.seed_table(runs, rules),
        "## The notebook's claims, tested",
        "",
        "Verdict rules (`stages/reporting/claims.py`), declared in `params.yaml: report` before the numbers. Every test behind the "
        f"six claims is one family, adjusted with Holm's method at {rules.significance_level:g}. **Supported**: the effect in the "
        f"claim's direction is at least the minimum effect ({100 * rules.min_accuracy_difference:g} points of test accuracy; "
        f"{100 * rules.min_convergence_difference:g} points of validation accuracy after epoch {rules.convergence_epoch} for claim 4) "
        "and its Holm-adjusted p is below that level. **Not supported**: the opposite effect passes that rule, or the equivalence "
        "test (two one-sided Welch tests against plus and minus the minimum effect, Holm-adjusted) shows the difference is smaller. "
        f"**Inconclusive** otherwise, with the power the seeds give for the minimum effect and the seeds per model that {rules.power_target:g} "
        "power would take (at the unadjusted level). Tests: Welch's t-test across seeds where the values have spread, the exact "
        "permutation test where neither side has any (its smallest possible p printed). A claim about one model must hold at every "
        f"seed; overfitting is the last epoch's validation loss at least {100 * rules.overfit_val_loss_rise:g}% above its minimum while "
        "the training loss still falls. McNemar's exact test on the main seed is shown where two models are compared. Each claim's "
        f"numbers are also in [`{link(args.claims)}`]({link(args.claims)}), a DVC metric.",
        "",
        claims.claims_table(decided),
        *claim_figures,
        "## Observations on the main run",
        "",
        *[f"{number}. {text}" for number, text in enumerate(narrative.observations(table, histories, rules, pair_test), start=1)],
        "",
        f"## What the most accurate model on this run gets wrong: {best}",
        "",
        f"The first {len(wrong)} of {sum(row['actual'] != row['predicted'] for row in rows)} misclassified test digits, true label as predicted label.",
        "",
        f"![{best} misclassified test digits]({link(misclassified)})",
        "",
        *environment_section([read_json(path) for path in run_records(args.runs, params)]),
        "",
    ]
    write_text(args.report, "\n".join(sections))
    logger.info("%s", summary.markdown_table(table))
    logger.info("report -> %s", args.report)
