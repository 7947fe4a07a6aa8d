"""The README's two commands are what CI runs, and what the README says about the project holds."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    section = (REPO / "README.md").read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
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

    readme = (REPO / "README.md").read_text()
    table = readme.split("| stage | what it does |", 1)[1].split("\n\n", 1)[0]
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


def test_results_prose_matches_the_committed_claims_metrics() -> None:
    """Every claim's verdict, and every p-value and effect the README quotes, is what reports/claims.json holds."""
    import json

    claims = json.loads((REPO / "reports" / "claims.json").read_text())
    readme = (REPO / "README.md").read_text()
    lines = {int(number): line for number, line in re.findall(r"^- claim (\d), (.*)$", readme, flags=re.MULTILINE)}
    assert sorted(lines) == [1, 2, 3, 4, 5, 6]
    for number, line in lines.items():
        entry = claims[f"claim{number}"]
        assert f"**{entry['verdict']}**" in line, f"claim {number}: README says {line!r}, reports/claims.json {entry['verdict']!r}"
        comparisons = list(entry.get("comparisons", {}).values())
        for quoted in re.findall(r"Holm p = ([0-9.e+-]+)", line):
            assert any(f"{comparison['p_holm']:.3g}" == f"{float(quoted):.3g}" for comparison in comparisons), (number, quoted)
        for quoted in re.findall(r"Welch p = ([0-9.e+-]+)", line):
            assert any(f"{comparison['p']:.3g}" == f"{float(quoted):.3g}" for comparison in comparisons), (number, quoted)
        for quoted in re.findall(r"([+-][0-9.]+) points", line)[:1]:
            assert any(round(100 * comparison["effect"], 2) == float(quoted) for comparison in comparisons), (number, quoted)


def test_the_readme_quotes_the_verdict_rules_as_the_report_words_them() -> None:
    """The rules' wording exists once (stages/reporting/wording.py, from params.yaml: report); the README quotes it."""
    from stages.params.report import load_report
    from stages.reporting.wording import rules_text

    rules, _ = load_report(REPO / "params.yaml")
    readme = " ".join((REPO / "README.md").read_text().split())
    assert rules_text(rules) in readme
