"""Code deps cannot drift: each stage's `deps:` in dvc.yaml lists exactly the stages/**/*.py files its
command imports (the import closure read from the code), the training stages' resume key hashes
what dvc.yaml lists, the ablation stage lists the bases params.yaml declares, and the README's
graph is `dvc dag` collapsed by stage template."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from stages.params.base import read_yaml
from stages.tools import closure
from stages.training.backup import declared_deps
from tests.conftest import dvc

REPO = Path(__file__).resolve().parents[1]


def declared_code_deps(dvc_yaml: dict) -> dict[str, tuple[str, set[str]]]:
    """Stage name -> (the stage module its command runs, the stages/ files it lists as deps)."""
    result = {}
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        match = re.match(r"python -m stages (\w+)", " ".join(body["cmd"].split()))
        assert match, f"{name}: command does not run a stage module: {body['cmd']}"
        code = {dep for dep in body.get("deps", []) if dep.startswith("stages/")}
        result[name] = (match.group(1), code)
    return result


def mismatches(dvc_yaml: dict, package_dir: Path) -> list[str]:
    problems = []
    for name, (module, declared) in declared_code_deps(dvc_yaml).items():
        imported = {path.relative_to(package_dir.parent).as_posix() for path in closure.code_files(module, package_dir)}
        problems += [f"{name}: missing dep {path}" for path in sorted(imported - declared)]
        problems += [f"{name}: extra dep {path} (not imported)" for path in sorted(declared - imported)]
    return problems


def test_every_stage_lists_exactly_the_modules_it_imports() -> None:
    assert mismatches(read_yaml((REPO / "dvc.yaml").read_text()), closure.PACKAGE_DIR) == []


def test_no_training_stage_imports_report_code() -> None:
    stages = declared_code_deps(read_yaml((REPO / "dvc.yaml").read_text()))
    for name in ("train", "replica", "ablation"):
        code = stages[name][1]
        assert not {path for path in code if path.startswith(("stages/reporting/", "stages/tools/")) or path == "stages/params/report.py"}, name


def test_the_check_fails_naming_a_removed_dep() -> None:
    dvc_yaml = read_yaml((REPO / "dvc.yaml").read_text())
    dvc_yaml["stages"]["train"]["do"]["deps"].remove("stages/training/history.py")
    dvc_yaml["stages"]["report"]["deps"].append("stages/training/backup.py")
    assert mismatches(dvc_yaml, closure.PACKAGE_DIR) == [
        "train: missing dep stages/training/history.py",
        "report: extra dep stages/training/backup.py (not imported)",
    ]


def test_the_check_follows_a_new_import(tmp_path: Path) -> None:
    """A module that starts importing another gains that module (and what it imports) as deps."""
    package = tmp_path / "stages"
    shutil.copytree(closure.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "plot.py").write_text((package / "plot.py").read_text() + "\nfrom stages.reporting import summary  # noqa\n")
    problems = mismatches(read_yaml((REPO / "dvc.yaml").read_text()), package)
    assert "plot: missing dep stages/reporting/summary.py" in problems and "plot: missing dep stages/params/training.py" in problems


def test_closure_reads_every_import_form_and_the_stated_rule(tmp_path: Path) -> None:
    package = tmp_path / "stages"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__", "errors", "a", "b", "c", "d", "sub/__init__", "sub/e", "sub/f"):
        (package / f"{name}.py").write_text("")
    (package / "a.py").write_text("import stages.b\nfrom stages import c\nfrom stages.errors import StageError\ndef f():\n    from stages.d import x\n")
    (package / "b.py").write_text("import json\nfrom stages.c import y\nfrom stages.sub import e\n")
    (package / "sub/e.py").write_text("import stages.sub.f\n")
    assert closure.module_closure("a", package) == ["a", "b", "c", "d", "sub.e", "sub.f"]
    assert closure.module_closure("b", package) == ["b", "c", "sub.e", "sub.f"]


def test_the_resume_key_hashes_the_deps_dvc_yaml_declares() -> None:
    """The training stages key their backups with the files dvc.yaml lists for them, data and code."""
    dvc_yaml = read_yaml((REPO / "dvc.yaml").read_text())
    for name, module in (("train", "train"), ("replica", "replica"), ("ablation", "replica")):
        stage = dvc_yaml["stages"][name]
        listed = [dep for dep in stage.get("do", stage)["deps"] if "${" not in dep]
        assert [path.as_posix() for path in declared_deps(name, REPO / "dvc.yaml")] == listed
        assert "data/prepared/train.npz" in listed and f"stages/{module}.py" in listed


def test_an_ablation_depends_on_its_expanded_declaration_not_on_any_base() -> None:
    """DVC's matrix cannot read an ablation's `base`; the variant stage's file stands for it, so an
    edit of one base retrains only that base's ablations (tests/test_workflows.py runs it)."""
    stages = read_yaml((REPO / "dvc.yaml").read_text())["stages"]
    ablation, variant = stages["ablation"], stages["variant"]["do"]
    assert not [param for param in ablation["params"] if param.startswith(("models", "ablations"))]
    assert "reports/variants/${item.model}.json" in ablation["deps"] and "--variant reports/variants/${item.model}.json" in ablation["cmd"]
    assert variant["params"] == ["models", "ablations.models.${key}"] and "reports/variants/${key}.json" in variant["outs"][0]


def test_the_model_stages_also_depend_on_what_the_entry_point_applies_before_them(tmp_path: Path) -> None:
    package = tmp_path / "stages"
    (package / "training").mkdir(parents=True)
    (package / "__main__.py").write_text('MODEL_STAGES = ("a",)\n')
    (package / "a.py").write_text("")
    (package / "b.py").write_text("")
    (package / "training" / "environment.py").write_text("import stages.c\n")
    (package / "c.py").write_text("")
    assert closure.module_closure("a", package) == ["a", "c", "training.environment"]
    assert closure.module_closure("b", package) == ["b"]
    assert set(closure.model_stages()) == {"train", "replica", "evaluate", "plot", "fingerprint"}


def collapsed_edges(mermaid: str) -> set[tuple[str, str]]:
    """Edges of a mermaid flowchart (`a --> b`, `a & b --> c & d`), each node named by its stage
    template (`train@model1` -> `train`)."""
    names = {node: label.split("@")[0] for node, label in re.findall(r"(\w+)\[\"([^\"]+)\"\]", mermaid)}
    plain = re.sub(r"\[\"[^\"]+\"\]", "", mermaid)
    edges = set()
    for line in plain.splitlines():
        parts = [[name.strip() for name in part.split("&")] for part in line.split("-->")]
        for sources, targets in zip(parts, parts[1:], strict=False):
            edges |= {(names.get(a, a), names.get(b, b)) for a in sources for b in targets}
    return edges


def test_readme_graph_is_dvc_dag_collapsed_by_template() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("```mermaid") :].split("```\n", 2)[0]
    assert len(block.splitlines()) <= 25, "the README's graph should fit on one screen"
    dag = dvc("dag", "--md", cwd=REPO).stdout
    assert collapsed_edges(block) == collapsed_edges(dag)
