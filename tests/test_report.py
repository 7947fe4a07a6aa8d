"""The report stage's own entry point: it stops before reading or writing anything when a declared run is absent."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from stages import report
from stages.params.training import load_training

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
