"""Code deps cannot drift: each stage's `deps:` in dvc.yaml lists exactly the stages/*.py files its
command imports (the import closure read from the code), the resume key hashes the same files,
and the README's graph is what `dvc dag --md` prints."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from stages import closure
from stages.config import read_yaml
from tests.conftest import dvc

REPO = Path(__file__).resolve().parents[1]


def declared_code_deps(dvc_yaml: dict) -> dict[str, tuple[str, set[str]]]:
    """Stage name -> (the stage module its command runs, the stages/*.py files it lists as deps)."""
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
        imported = {f"stages/{path.name}" for path in closure.code_files(module, package_dir)}
        problems += [f"{name}: missing dep {path}" for path in sorted(imported - declared)]
        problems += [f"{name}: extra dep {path} (not imported)" for path in sorted(declared - imported)]
    return problems


def test_every_stage_lists_exactly_the_modules_it_imports() -> None:
    assert mismatches(read_yaml((REPO / "dvc.yaml").read_text()), closure.PACKAGE_DIR) == []


def test_the_check_fails_naming_a_removed_dep() -> None:
    dvc_yaml = read_yaml((REPO / "dvc.yaml").read_text())
    dvc_yaml["stages"]["train"]["do"]["deps"].remove("stages/history.py")
    dvc_yaml["stages"]["report"]["deps"].append("stages/builder.py")
    assert mismatches(dvc_yaml, closure.PACKAGE_DIR) == ["train: missing dep stages/history.py", "report: extra dep stages/builder.py (not imported)"]


def test_the_check_follows_a_new_import(tmp_path: Path) -> None:
    """A module that starts importing another gains that module (and what it imports) as deps."""
    package = tmp_path / "stages"
    shutil.copytree(closure.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "plot.py").write_text((package / "plot.py").read_text() + "\nfrom stages import summary  # noqa\n")
    problems = mismatches(read_yaml((REPO / "dvc.yaml").read_text()), package)
    assert "plot: missing dep stages/summary.py" in problems and "plot: missing dep stages/config.py" in problems


def test_closure_reads_every_import_form_and_the_stated_rule(tmp_path: Path) -> None:
    package = tmp_path / "stages"
    package.mkdir()
    for name in ("__init__", "errors", "a", "b", "c", "d"):
        (package / f"{name}.py").write_text("")
    (package / "a.py").write_text("import stages.b\nfrom stages import c\nfrom stages.errors import StageError\ndef f():\n    from stages.d import x\n")
    (package / "b.py").write_text("import json\nfrom stages.c import y\n")
    assert closure.module_closure("a", package) == ["a", "b", "c", "d"]
    assert closure.module_closure("b", package) == ["b", "c"]


def test_the_resume_key_hashes_the_stage_closure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The train stage keys its backup with `closure.code_files("train")`, the files dvc.yaml lists."""
    from stages import train

    seen = {}

    def record(spec, settings, data_files, code_files):
        seen["code"] = sorted(f"stages/{Path(path).name}" for path in code_files)
        raise SystemExit

    monkeypatch.setattr(train, "run_key", record)
    monkeypatch.setattr(train, "read_npz", lambda path: {"x": [], "y": []})
    params = train.load_params(REPO / "params.yaml")
    with pytest.raises(SystemExit):
        train.run(params.models["model1"], params.train, tmp_path, tmp_path / "log", tmp_path / "backup", "train", lambda *args: None)
    train_deps = declared_code_deps(read_yaml((REPO / "dvc.yaml").read_text()))["train"][1]
    assert seen["code"] == sorted(train_deps)


def test_readme_graph_is_dvc_dag() -> None:
    readme = (REPO / "README.md").read_text()
    dag = dvc("dag", "--md", cwd=REPO).stdout.strip()
    assert dag.startswith("```mermaid")
    assert dag in readme, "README's graph differs from `dvc dag --md`; paste its output"
