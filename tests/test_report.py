"""The report stage: it stops before reading or writing anything when a declared run is absent; the report answers first; its figures draw runs."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from stages import report
from stages.params.training import load_training
from stages.reporting.decide import BETTER_WHEN_TRAINED, LESS_RELIABLE, MEASURES_DISAGREE, NOT_EVALUATED
from stages.reporting.power import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

REPO = Path(__file__).resolve().parents[1]


def arguments(root: Path) -> argparse.Namespace:
    names = {"data": "prepared", "eval": "eval", "training": "training", "replicas": "replicas", "ablations": "ablations", "runs": "runs"}
    return argparse.Namespace(**{option: root / folder for option, folder in names.items()})


def write_outputs(paths: list[Path]) -> None:
    for path in paths:
        if path.name == "training":
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}", encoding="utf-8")


def test_an_absent_run_is_named_by_its_stage_before_anything_is_read(tmp_path: Path) -> None:
    params = load_training(REPO / "params.yaml")
    args = arguments(tmp_path)
    wanted = report.inputs_by_stage(params, args)
    assert len(wanted) == 1 + 2 * len(params.models) + len(params.models) * len(params.replicas.seeds) + len(params.ablations.models) * len(
        params.ablations.seeds
    )
    model, seed = next(iter(params.models)), params.replicas.seeds[-1]
    replica = f"replica@{model}-{seed}"
    record = args.runs / "replica" / f"{model}-seed-{seed}.json"
    write_outputs([path for stage, paths in wanted.items() if stage != replica for path in paths if path != args.data / "test.npz"])
    write_outputs([record])  # the replica's run record without its results: a half-there stage

    with pytest.raises(SystemExit) as stopped:
        report.check_inputs(params, args)
    message = str(stopped.value)
    assert "the outputs of 2 stages are missing" in message
    assert f"  prepare: {(args.data / 'test.npz').as_posix()} not there" in message
    assert f"  {replica}: {(args.replicas / model / f'seed-{seed}' / 'metrics.json').as_posix()}" in message and record.as_posix() not in message

    write_outputs([args.data / "test.npz", *wanted[replica]])
    report.check_inputs(params, args)  # everything there: no error


def test_a_stage_with_none_of_its_outputs_reads_not_run(tmp_path: Path) -> None:
    params = load_training(REPO / "params.yaml")
    args = arguments(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        report.check_inputs(params, args)
    message = str(stopped.value)
    assert f"  train@{next(iter(params.models))}: not run (none of its outputs is there)" in message
    assert message.endswith("nothing was written") and not any(tmp_path.iterdir())


VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, MEASURES_DISAGREE, NOT_EVALUATED, BETTER_WHEN_TRAINED, LESS_RELIABLE)
VERDICT_LINE = re.compile(rf"^([1-6])\. .+ \*\*({'|'.join(re.escape(verdict) for verdict in VERDICTS)})\*\*$", re.MULTILINE)


@pytest.mark.parametrize("path", [REPO / "reports" / "report.md"], ids=["committed"])
def test_the_report_answers_first(path: Path) -> None:
    """Within its first 400 words: the comparison table, then the overview figure, then the six verdicts (each as
    claims.json has it), with the evidence below them."""
    text = path.read_text()
    verdicts = list(VERDICT_LINE.finditer(text))
    assert [int(match[1]) for match in verdicts] == [1, 2, 3, 4, 5, 6]
    before = text[: verdicts[0].start()]
    assert len(text[: verdicts[-1].end()].split()) <= 400
    assert 0 <= before.index("| Model |") < before.index("![Validation accuracy per epoch of every run")
    claims = json.loads((REPO / "reports" / "claims.json").read_text())
    assert [match[2] for match in verdicts] == [claims[f"claim{number}"]["verdict"] for number in range(1, 7)]
    assert text.index("## The claims' evidence") > verdicts[-1].end()
    assert text.index("## Environment") > text.index("## Layer tables") > text.index("## Models in detail")


def test_every_report_figure_draws_each_run_and_no_mean() -> None:
    """The claim figures draw one line per run (models x seeds), failed runs dashed and named in the legend."""
    from stages.reporting import charts
    from stages.reporting.claims import Run

    def run(seed: int, accuracy: float) -> Run:
        return Run(seed=seed, test_accuracy=accuracy, test_loss=1.0, train_loss=1.0, val_accuracy=(0.1, accuracy, accuracy), correct=np.ones(3, bool))

    runs = {"good": [run(0, 0.99), run(1, 0.98)], "flaky": [run(0, 0.97), run(1, 0.11), run(2, 0.96)]}
    label = "validation accuracy on the test set (%)"
    figure = charts.claim_figure(runs, "val_accuracy", {"flaky": (1,)}, charts.colours(list(runs)), "t", label, zoom=["good", "flaky"])
    curves = figure.axes[0]
    drawn = [line for line in curves.get_lines() if len(line.get_xdata())]
    assert len(drawn) == 5  # one line per run, no mean line
    dashed = [line for line in drawn if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [10.0, 11.0, 11.0]  # the failed run, in %
    assert "flaky, seed 1: at chance (failed)" in [text.get_text() for text in curves.get_legend().get_texts()]
    assert all(float(tick).is_integer() for tick in curves.get_xticks())
    assert "test set" in curves.get_ylabel() and "(%)" in curves.get_ylabel()
    zoomed = figure.axes[1]
    low, high = zoomed.get_ylim()
    assert 95 < low and high < 100  # the trained runs' final accuracies, 96-99%, fill the panel; the failed one is left out
