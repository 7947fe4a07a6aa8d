"""The README's two commands are what CI runs, and what the README and docs/ say about the project holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The pages that quote the claims' verdicts: the README a line each, docs/statistics.md with the evidence.
VERDICT_PAGES = ("README.md", "docs/statistics.md")


def readme_commands() -> list[str]:
    section = (REPO / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    pipeline, tests = readme_commands()
    assert pipeline.endswith("&& dvc repro")
    assert "bash tests/install_chromium.sh" in tests and tests.endswith("&& pytest")
    ci = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [tests]


def test_every_stage_output_is_in_the_stage_table() -> None:
    from stages.params.base import read_yaml

    page = (REPO / "docs" / "pipeline.md").read_text()
    table = page.split("| stage | what it does |", 1)[1].split("\n\n", 1)[0]
    for name, stage in read_yaml((REPO / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        assert f"`{name}" in table, name
        for group in ("outs", "metrics", "plots"):
            for out in body.get(group, []):
                path = next(iter(out)) if isinstance(out, dict) else out
                # Templated paths (${key}, ${item.model}) appear as <model> / <seed> placeholders.
                generic = re.sub(r"\$\{item\.seed\}", "<seed>", re.sub(r"\$\{(key|item\.model)\}", "<model>", path))
                parent, leaf = generic.rsplit("/", 1)
                stem = leaf.split(".")[0]
                assert parent.replace("<model>", "") in table.replace("<variant>", "") and stem in table, f"{name}: {path}"


@pytest.mark.parametrize("page", VERDICT_PAGES)
def test_results_prose_matches_the_committed_claims_metrics(page: str) -> None:
    """Every claim's verdict, and every p-value and effect the page quotes, is what reports/claims.json holds."""
    import json

    claims = json.loads((REPO / "reports" / "claims.json").read_text())
    text = (REPO / page).read_text()
    lines = {int(number): line for number, line in re.findall(r"^- claim (\d), (.*)$", text, flags=re.MULTILINE)}
    assert sorted(lines) == [1, 2, 3, 4, 5, 6]
    for number, line in lines.items():
        entry = claims[f"claim{number}"]
        assert f"**{entry['verdict']}**" in line, f"claim {number}: {page} says {line!r}, reports/claims.json {entry['verdict']!r}"
        comparisons = list(entry.get("comparisons", {}).values())
        labels = (("Holm p", "p_holm"), ("equivalence Holm p", "equivalence_p_holm"), ("Welch p", "p"), ("Boschloo p", "failure_p"))
        for label, key in (*labels, ("Boschloo's exact test p", "failure_p")):
            for quoted in re.findall(rf"(?<!equivalence ){label} = ([0-9.e+-]+)" if label == "Holm p" else rf"{label} = ([0-9.e+-]+)", line):
                found = [comparison[key] for comparison in comparisons if comparison[key] is not None]
                assert any(f"{value:.3g}" == f"{float(quoted):.3g}" for value in found), (number, label, quoted)
        for quoted in re.findall(r"([+-][0-9.]+) points", line)[:1]:
            assert any(comparison["effect"] is not None and f"{100 * comparison['effect']:.2f}" == quoted.lstrip("+") for comparison in comparisons), (
                number,
                quoted,
            )
        if "overfitting" in entry:
            for quoted in re.findall(r"Stouffer's method: p = ([0-9.e+-]+)", line):
                assert f"{entry['overfitting']['combined_p']:.3g}" == f"{float(quoted):.3g}", (number, quoted)


def test_the_docs_quote_the_verdict_rules_as_the_report_words_them() -> None:
    """The rules' wording exists once (stages/reporting/wording.py, from params.yaml: report); docs/statistics.md quotes it."""
    from stages.params.report import load_report
    from stages.reporting.wording import rules_text

    rules, _ = load_report(REPO / "params.yaml")
    page = " ".join((REPO / "docs" / "statistics.md").read_text().split())
    assert rules_text(rules) in page


def test_results_table_matches_the_committed_summary() -> None:
    """Every number in the README's results table is reports/summary.json's (this project's runs) or
    reports/notebook.json's (the notebook's printed results), to the digits shown (within half a unit of the
    last digit: summary.json keeps six decimals, the README rounds the unrounded value)."""
    import json

    summary = json.loads((REPO / "reports" / "summary.json").read_text())
    notebook = json.loads((REPO / "reports" / "notebook.json").read_text())["models"]
    section = (REPO / "README.md").read_text().split("## Results at a glance", 1)[1].strip().split("\n\n", 1)[0]
    rows = {}
    for line in section.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        label = re.fullmatch(r"Model (\d)|`(\w+)` \(ablation\)", cells[0])
        assert label, f"README results table: unexpected row {line!r}"
        rows[f"model{label[1]}" if label[1] else label[2]] = cells
    assert sorted(rows) == sorted(summary), "the table's rows are not the summary's models and ablations"

    def agrees(shown: str, value: float, scale: float = 1.0) -> bool:
        digits = len(shown.split(".")[1]) if "." in shown else 0
        return abs(float(shown) - scale * value) <= 0.5 * 10**-digits + 1e-9

    for name, (_, main_run, spread, failed, published) in rows.items():
        entry = summary[name]
        runs = re.fullmatch(r"(\d+) of (\d+)", failed)
        assert runs and int(runs[1]) == entry["runs_at_chance"] and int(runs[2]) == entry["seeds"], (name, failed, entry)
        if entry["test_accuracy_mean"] is None:
            assert spread == "none trained", (name, spread)
        else:
            accuracy = re.fullmatch(r"([0-9.]+)% ± ([0-9.]+) \((\d+)\)", spread)
            assert accuracy, f"{name}: README {spread!r} is not 'mean% ± sd (n)'"
            assert int(accuracy[3]) == entry["seeds"] - entry["runs_at_chance"], f"{name}: README says {accuracy[3]} trained runs"
            assert agrees(accuracy[1], entry["test_accuracy_mean"], 100) and agrees(accuracy[2], entry["test_accuracy_sd"], 100), (name, spread, entry)
        if "test_accuracy" in entry:  # a main model: its seed-0 run, and the notebook's result
            main = re.fullmatch(r"\*\*([0-9.]+)%\*\*", main_run)
            assert main and agrees(main[1], entry["test_accuracy"], 100), (name, main_run)
            assert published.endswith("%") and agrees(published[:-1], notebook[name]["test_accuracy"], 100), (name, published)
        else:
            assert main_run == published == "", f"{name} has no main run, yet the README quotes one"
