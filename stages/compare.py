"""Is my change better? `python -m stages compare BASELINE CANDIDATE [CANDIDATE ...]`

Each side is a git revision, a branch or a DVC experiment name (`dvc exp list`). Both sides' per-seed
results are read from git (the main run's `reports/eval/<model>/metrics.json`, the replicas'
`reports/replicas/<model>/seed-<k>/metrics.json`, the ablations' `reports/ablations/...`): nothing
is retrained. The models and ablations whose declarations in `params.yaml` differ are compared (or
those named with `--model`), on test accuracy and test loss, by the decision engine the notebook's
claims use (`stages/reporting/decide.py`): failed runs as their own outcome, Welch among the runs
that trained, Holm across everything compared, an outlook where the verdict is inconclusive. The
rules are those of `params.yaml: report` where the command runs (the rules in force, whatever the
sides declared).

Output: a table on the terminal; `--md` for a pull-request comment; `--json`. `--plot FILE` draws,
for a sweep (candidates that differ from the baseline in one numeric parameter), the metric against
the swept value, every seed a point, failed runs marked. Bad input: one line, exit 1, nothing written.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stages.errors import StageError
from stages.params.base import ParamsError, read_document, read_yaml, validate
from stages.params.report import ReportParams, ReportSection
from stages.reporting import results
from stages.reporting.claims import measures
from stages.reporting.decide import Comparison, decide, has_failed, measure_pair
from stages.reporting.power import INCONCLUSIVE
from stages.reporting.stats import Spread, format_p

MEASURES = ("accuracy", "loss")
# The sections both sides must share: a comparison across other data or training settings is not one change.
SHARED = ("prepare", "train")


@dataclasses.dataclass(frozen=True)
class Result:
    """One run's test metrics, as the pipeline wrote them."""

    seed: int
    test_accuracy: float
    test_loss: float


@dataclasses.dataclass(frozen=True)
class Side:
    name: str  # as the user gave it
    commit: str
    params: Mapping[str, Any]


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def resolve(name: str) -> Side:
    """A git revision or branch first, then a DVC experiment (its ref under refs/exps)."""
    found = git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    commit = found.stdout.strip() if found.returncode == 0 else ""
    if not commit:
        refs = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout.split("\n")
        matches = [line.split()[1] for line in refs if line and line.split()[0].rsplit("/", 1)[-1] == name]
        if len(matches) > 1:
            raise StageError(f"compare: {len(matches)} DVC experiments are named {name!r}; give one's commit (dvc exp show --sha)")
        commit = matches[0] if matches else ""
    if not commit:
        raise StageError(f"compare: no git revision, branch or DVC experiment named {name!r} (git branch, dvc exp list)")
    text = read_at(commit, "params.yaml", name)
    return Side(name, commit, read_yaml(text))


def read_at(commit: str, path: str, side: str) -> str:
    shown = git("show", f"{commit}:{path}")
    if shown.returncode != 0:
        raise StageError(f"compare: {side} has no {path} ({commit[:7]})")
    return shown.stdout


def declarations(side: Side) -> dict[str, Any]:
    """Every model's and ablation's declaration on a side. An ablation's is the model its variant stage
    resolved (`reports/variants/<name>.json`: the base with the one change), so a base edit its change
    overrides (Model 2's learning rate, for the ablation that swaps in Adam) is no difference."""
    models = dict(side.params.get("models") or {})
    ablations = (side.params.get("ablations") or {}).get("models") or {}
    found: dict[str, Any] = {name: {"model": spec} for name, spec in models.items()}
    for name, spec in ablations.items():
        resolved = git("show", f"{side.commit}:reports/variants/{name}.json")
        found[name] = {"variant": json.loads(resolved.stdout)} if resolved.returncode == 0 else {"ablation": spec, "base": models.get((spec or {}).get("base"))}
    return found


def seeds_of(params: Mapping[str, Any], name: str) -> list[tuple[str, int]]:
    """(results path, seed) of each run of `name` on a side: main run and replicas, or the ablation's seeds."""
    if name in (params.get("models") or {}):
        main = int(params["train"]["seed"])
        return [(f"reports/eval/{name}/metrics.json", main)] + [
            (f"reports/replicas/{name}/seed-{seed}/metrics.json", int(seed)) for seed in (params.get("replicas") or {}).get("seeds", [])
        ]
    return [(f"reports/ablations/{name}/seed-{seed}/metrics.json", int(seed)) for seed in (params.get("ablations") or {}).get("seeds", [])]


def check_current(side: Side, lock: Mapping[str, Any], name: str) -> None:
    """The side's results for `name` are from its own declaration: every run's stage in its dvc.lock was
    locked with the model's params as the side declares them (an ablation: with its variant file as
    committed). A params edit committed without `dvc repro` would otherwise be compared on the old runs."""
    params = side.params
    if name in (params.get("models") or {}):
        stages = [f"train@{name}", *(f"replica@{name}-{seed}" for seed in (params.get("replicas") or {}).get("seeds", []))]
        for stage in stages:
            if stage not in lock:
                raise StageError(f"compare: {side.name} has no per-seed results for {name}: {stage} is not in its dvc.lock (run dvc repro there)")
            locked = (lock[stage].get("params") or {}).get("params.yaml") or {}
            if locked.get(f"models.{name}") != params["models"][name]:
                raise StageError(f"compare: {side.name}'s results for {name} are not from its params.yaml ({stage} in its dvc.lock differs; run dvc repro)")
        return
    variant = read_at(side.commit, f"reports/variants/{name}.json", side.name)
    digest = hashlib.md5(variant.encode()).hexdigest()
    for seed in (params.get("ablations") or {}).get("seeds", []):
        stage = f"ablation@{name}-{seed}"
        if stage not in lock:
            raise StageError(f"compare: {side.name} has no per-seed results for {name}: {stage} is not in its dvc.lock (run dvc repro there)")
        deps = {dep["path"]: dep.get("md5") for dep in lock[stage].get("deps", [])}
        if deps.get(f"reports/variants/{name}.json") != digest:
            raise StageError(f"compare: {side.name}'s results for {name} are not from its declaration ({stage} in its dvc.lock differs; run dvc repro)")


def load_results(side: Side, name: str) -> list[Result]:
    found = []
    for path, seed in seeds_of(side.params, name):
        shown = git("show", f"{side.commit}:{path}")
        if shown.returncode != 0:
            raise StageError(
                f"compare: {side.name} has no per-seed results for {name}: {path} is not in {side.commit[:7]} (run dvc repro or dvc exp run there)"
            )
        metrics = json.loads(shown.stdout)
        found.append(Result(seed, float(metrics["test_accuracy"]), float(metrics["test_loss"])))
    return found


def changed_key(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(key path, old, new) of every leaf that differs."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found = []
        for key in dict.fromkeys([*before, *after]):
            found += changed_key(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (first, second) in enumerate(zip(before, after, strict=True)):
            found += changed_key(first, second, f"{path}[{index}]")
        return found
    return [] if before == after else [(path, before, after)]


def check_shared(baseline: Side, candidate: Side) -> None:
    for section in SHARED:
        differ = changed_key(baseline.params.get(section), candidate.params.get(section), section)
        if differ:
            listed = ", ".join(f"{key}: {old!r} vs {new!r}" for key, old, new in differ)
            raise StageError(f"compare: {baseline.name} and {candidate.name} differ in `{section}` ({listed}); compare runs with the same data and training")


def chosen_models(baseline: Side, candidates: Sequence[Side], named: Sequence[str]) -> list[str]:
    before = declarations(baseline)
    if named:
        for side in (baseline, *candidates):
            declared = declarations(side)
            missing = [name for name in named if name not in declared]
            if missing:
                raise StageError(f"compare: {side.name} declares no model or ablation {missing[0]!r}; it has {', '.join(declared)}")
        return list(named)
    found: list[str] = []
    for side in candidates:
        after = declarations(side)
        found += [name for name in after if name in before and before[name] != after[name] and name not in found]
    if not found:
        names = ", ".join(side.name for side in candidates)
        raise StageError(f"compare: {baseline.name} and {names} declare the same models and ablations: nothing to compare (name one with --model)")
    return found


@dataclasses.dataclass(frozen=True)
class Found:
    """Everything compared: per candidate and model, the two sides' runs and each measure's comparison."""

    baseline: Side
    candidates: tuple[Side, ...]
    models: tuple[str, ...]
    runs: Mapping[tuple[str, str], list[Result]]  # (side name, model) -> runs
    comparisons: tuple[Comparison, ...]
    rules: ReportParams  # the rules it was decided by


def compare(baseline: Side, candidates: Sequence[Side], named: Sequence[str]) -> Found:
    for side in candidates:
        check_shared(baseline, side)
    rules = current_rules()
    models = chosen_models(baseline, candidates, named)
    for side in (baseline, *candidates):
        lock = read_yaml(read_at(side.commit, "dvc.lock", side.name)).get("stages") or {}  # `lock`: its stages, read once a side
        for name in models:
            check_current(side, lock, name)
    runs = {(side.name, name): load_results(side, name) for side in (baseline, *candidates) for name in models}
    known = measures(rules)
    raw = [
        measure_pair(side.name, runs[(side.name, name)], baseline.name, runs[(baseline.name, name)], known[key], rules)
        for side in candidates
        for name in models
        for key in MEASURES
    ]
    # One Holm family: everything this command compares.
    decided = decide(raw, [0] * len(raw), rules)
    return Found(baseline, tuple(candidates), tuple(models), runs, tuple(decided), rules)


def current_rules() -> ReportParams:
    """The report rules of the params.yaml where the command runs; a problem in them is named like `check` names it."""
    try:
        return validate(ReportSection, read_document()).report
    except ParamsError as error:
        raise StageError(f"compare: {error}") from error


def _side(runs: Sequence[Result], measure: str, chance: float) -> str:
    trained = Spread(tuple(getattr(run, measure) for run in runs if not has_failed(run, chance)))
    scale, digits = (100, 2) if measure == "test_accuracy" else (1, 4)
    if not trained.values:
        return "none trained"
    sd = "" if len(trained.values) < 2 else f" ± {scale * trained.sd:.{digits}f}"
    return f"{scale * trained.mean:.{digits}f}{sd} ({len(trained.values)})"


def _difference(item: Comparison) -> str:
    if math.isnan(item.difference):
        return "-"
    scale, digits = (100, 2) if item.measure.unit == "points" else (1, 4)
    low, high = item.interval
    return f"{scale * item.difference:+.{digits}f} ({scale * low:+.{digits}f} to {scale * high:+.{digits}f})"


def rows(found: Found) -> list[list[str]]:
    """One row per candidate, model and measure: the two sides, the candidate's advantage with its interval, p and Holm p, failures, verdict."""
    chance = found.rules.chance_accuracy
    table = []
    index = 0
    for side in found.candidates:
        for name in found.models:
            for key in MEASURES:
                item = found.comparisons[index]
                index += 1
                attribute = "test_accuracy" if key == "accuracy" else "test_loss"
                failures = item.failures
                failed = f"{failures.better}/{failures.better_runs} vs {failures.worse}/{failures.worse_runs}"
                if not math.isnan(failures.p_value):
                    failed += f", p {format_p(failures.p_value)} ({format_p(failures.p_holm)})"
                table.append(
                    [
                        side.name,
                        name,
                        item.measure.name,
                        _side(found.runs[(found.baseline.name, name)], attribute, chance),
                        _side(found.runs[(side.name, name)], attribute, chance),
                        _difference(item),
                        f"{format_p(item.p_value)} ({format_p(item.p_holm)})",
                        failed,
                        item.verdict,
                    ]
                )
    return table


HEADER = ["candidate", "model", "measure", "baseline (n)", "candidate (n)", "its advantage (95% CI)", "p (Holm)", "failed runs, p (Holm)", "better?"]


def model_column(found: Found) -> list[str]:
    """The model of each comparison, in `compare`'s order (candidate, model, measure)."""
    return [name for _ in found.candidates for name in found.models for _ in MEASURES]


def outlook_lines(found: Found) -> list[str]:
    lines = []
    for item, name in zip(found.comparisons, model_column(found), strict=True):
        if item.verdict != INCONCLUSIVE or not item.outlooks or math.isnan(item.outlooks[0].supported):
            continue
        scale, unit = (100, " points") if item.measure.unit == "points" else (1, "")
        parts = []
        for outlook in item.outlooks[1:] if item.outlooks[0].effect == 0 else item.outlooks:
            at = "zero" if outlook.effect == 0 else f"{scale * outlook.effect:+.{2 if unit else 4}f}{unit}"
            needed = f"{outlook.seeds_needed} seeds a side make it {outlook.target:g} likely" if outlook.seeds_needed else f"not within {outlook.most} seeds"
            chances = f"supported {outlook.supported:.2f}, not supported {outlook.not_supported:.2f}"
            parts.append(f"if the true effect were {at}: {chances} ({outlook.verdict}: {needed})")
        lines.append(f"{item.better}, {name}, {item.measure.name}: " + "; ".join(parts))
    return lines


def header_line(found: Found) -> str:
    tests = len(found.comparisons)
    return (
        f"Is {', '.join(side.name for side in found.candidates)} better than {found.baseline.name}? "
        f"{', '.join(found.models)}: test accuracy and test loss over each side's seeds; Holm over {tests} tests at {found.rules.significance_level:g}; "
        "rules: params.yaml report (docs/statistics.md)."
    )


def terminal(found: Found) -> str:
    table = [HEADER, *rows(found)]
    widths = [max(len(row[column]) for row in table) for column in range(len(HEADER))]
    lines = [header_line(found), ""]
    for number, row in enumerate(table):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    outlooks = outlook_lines(found)
    if outlooks:
        lines += ["", "Inconclusive, simulated with the same rule at the trained runs' spreads:", *(f"- {line}" for line in outlooks)]
    return "\n".join(lines) + "\n"


def markdown(found: Found) -> str:
    lines = [f"**{header_line(found)}**", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(found)]
    outlooks = outlook_lines(found)
    if outlooks:
        lines += ["", "Inconclusive, simulated with the same rule at the trained runs' spreads:", "", *(f"- {line}" for line in outlooks)]
    return "\n".join(lines) + "\n"


def as_json(found: Found) -> str:
    document = {
        "baseline": {"name": found.baseline.name, "commit": found.baseline.commit},
        "candidates": [{"name": side.name, "commit": side.commit} for side in found.candidates],
        "models": list(found.models),
        "holm_tests": len(found.comparisons),
        "comparisons": [
            {"candidate": item.better, "model": name, "measure": item.measure.name, **results.comparison_json(item)}
            for item, name in zip(found.comparisons, model_column(found), strict=True)
        ],
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def swept(found: Found) -> tuple[str, list[float]]:
    """The one numeric parameter every candidate changes from the baseline, and its value on each side (baseline first)."""
    keys = []
    for side in found.candidates:
        differ = [(key, new) for key, _, new in changed_key(found.baseline.params, side.params) if not key.startswith("report")]
        if len(differ) != 1 or not isinstance(differ[0][1], (int, float)) or isinstance(differ[0][1], bool):
            changes = ", ".join(key for key, _ in differ) or "nothing"
            raise StageError(f"compare: --plot needs candidates that each change one numeric parameter; {side.name} changes {changes}")
        keys.append(differ[0])
    names = {key for key, _ in keys}
    if len(names) != 1:
        raise StageError(f"compare: --plot needs one swept parameter; the candidates change {', '.join(sorted(names))}")
    key = keys[0][0]
    base: Any = found.baseline.params
    for part in key.replace("]", "").replace("[", ".").split("."):
        base = base[int(part)] if isinstance(base, list) else base[part]
    return key, [float(base), *(float(value) for _, value in keys)]


def plot(found: Found, path: Path) -> None:
    """The metric against the swept value: every seed a point, failed runs as crosses at their accuracy."""
    key, values = swept(found)
    chance = found.rules.chance_accuracy
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = [found.baseline, *found.candidates]
    # A sweep over orders of magnitude (learning rates) is read on a log axis.
    logarithmic = min(values) > 0 and max(values) / min(values) >= 10
    figure, axes = plt.subplots(1, len(found.models), figsize=(5.6 * len(found.models), 3.8), squeeze=False)
    for axis, name in zip(axes[0], found.models, strict=True):
        for side, value in zip(sides, values, strict=True):
            runs = found.runs[(side.name, name)]
            # Each seed a little apart, so that runs with the same accuracy (failed runs at chance) stay visible.
            offsets = [(index - (len(runs) - 1) / 2) * 0.05 for index in range(len(runs))]
            where = [value * (1 + offset) if logarithmic else value + offset * max(values) for offset in offsets]
            trained_at = [position for position, run in zip(where, runs, strict=True) if not has_failed(run, chance)]
            failed_at = [position for position, run in zip(where, runs, strict=True) if has_failed(run, chance)]
            trained = [100 * run.test_accuracy for run in runs if not has_failed(run, chance)]
            failed = [100 * run.test_accuracy for run in runs if has_failed(run, chance)]
            colour = "#444444" if side is found.baseline else "#1f77b4"
            label = "baseline" if side is found.baseline else "candidates"
            axis.scatter(trained_at, trained, s=24, color=colour, alpha=0.8, zorder=3, label=f"{label}: a trained run" if trained else None)
            axis.scatter(
                failed_at,
                failed,
                s=44,
                marker="x",
                color="#d62728",
                zorder=3,
                label=f"a failed run (at most {100 * chance:g}%)" if failed else None,
            )
            if trained:
                span = (value / 1.12, value * 1.12) if logarithmic else (value - 0.02 * max(values), value + 0.02 * max(values))
                axis.plot(span, [sum(trained) / len(trained)] * 2, color=colour, linewidth=2)
        if logarithmic:
            axis.set_xscale("log")
        axis.set_xticks(sorted(set(values)), [f"{value:g}" for value in sorted(set(values))])
        axis.minorticks_off()
        axis.set_xlabel(key)
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"{name}: test accuracy of every seed; bar: the trained runs' mean", fontsize=9)
        axis.set_ylim(0, 101)
        axis.grid(alpha=0.3)
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        axis.legend(unique.values(), unique.keys(), fontsize=8, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=110)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    plt.close(figure)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", help="a git revision, branch or DVC experiment")
    parser.add_argument("candidates", nargs="+", help="one or more revisions, branches or DVC experiments")
    parser.add_argument("--model", action="append", default=[], help="compare this model or ablation (repeatable); default: those whose declaration differs")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--md", action="store_true", help="a Markdown table, for a pull-request comment")
    output.add_argument("--json", action="store_true", help="every number, as JSON")
    parser.add_argument("--plot", type=Path, help="for a sweep: write the metric against the swept value to this PNG")
    args = parser.parse_args(argv)
    baseline = resolve(args.baseline)
    candidates = [resolve(name) for name in args.candidates]
    found = compare(baseline, candidates, args.model)
    if args.plot:
        swept(found)  # refuse before anything is printed or written
    sys.stdout.write(as_json(found) if args.json else markdown(found) if args.md else terminal(found))
    if args.plot:
        plot(found, args.plot)
