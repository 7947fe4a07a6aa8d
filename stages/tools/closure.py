"""Which of our modules a stage's command reads: the import closure of its `stages` module.

`dvc.yaml` lists these files as each stage's code deps, and `tests/test_deps.py` fails when the two
disagree; the training stages' resume key hashes what `dvc.yaml` lists, so no stage imports this
tool. The closure is read from the code with `ast`, without importing anything: every
`import stages.x.y` and `from stages[.x] import y` at any depth of a module, followed transitively.
Print a stage's list with `python -m stages.tools.closure train`.

Rule for what is left out: the packages' `__init__.py` files (docstrings, and the switch that quiets
TensorFlow's C++ log), `stages/__main__.py` (the entry point that picks the stage) and
`stages/errors.py` (the error type) cannot change an output, and are imported by every stage, so
they are not deps; an edit to them reruns nothing. One addition: before a stage that runs a model
(`MODEL_STAGES` in `stages/__main__.py`), the entry point applies the pinned numerics with
`stages.training.environment`, so that module and what it imports are deps of those stages.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "stages"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
NOT_DEPS = frozenset({"__main__", "errors"})
# What the entry point runs before a model stage's own module (see `stages/__main__.py`).
APPLIED_BEFORE_MODEL_STAGES = "training.environment"


def module_file(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """`training.fit` -> `stages/training/fit.py`."""
    return package_dir.joinpath(*module.split(".")).with_suffix(".py")


def _module_of(dotted: str, package_dir: Path) -> str | None:
    """The module a dotted import names (`stages.training.fit` -> `training.fit`), if it is one of ours."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    module = ".".join(parts[1:])
    return module if module_file(module, package_dir).is_file() else None


def _imported(module: str, package_dir: Path) -> set[str]:
    """The `stages` modules that `stages.<module>` imports directly."""
    path = module_file(module, package_dir)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            # `from stages.training import fit` imports a module; `from stages.files import x` names one.
            candidates = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in (_module_of(candidate, package_dir) for candidate in candidates) if name is not None)
    return found


def model_stages(package_dir: Path = PACKAGE_DIR) -> tuple[str, ...]:
    """The `MODEL_STAGES` tuple of `stages/__main__.py`, read without importing it."""
    entry = module_file("__main__", package_dir)
    if not entry.is_file():
        return ()
    tree = ast.parse(entry.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(target, ast.Name) and target.id == "MODEL_STAGES" for target in node.targets):
            return tuple(ast.literal_eval(node.value))
    return ()


def module_closure(module: str, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """`module` and every `stages` module it reaches, sorted, less the NOT_DEPS rule; for a model
    stage, also what the entry point applies before it."""
    seen: set[str] = set()
    pending = [module]
    if module in model_stages(package_dir):
        pending.append(APPLIED_BEFORE_MODEL_STAGES)
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(_imported(current, package_dir) - seen)
    return sorted(seen - NOT_DEPS)


def code_files(module: str, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The files of `module_closure(module)`."""
    return [module_file(name, package_dir) for name in module_closure(module, package_dir)]


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:]:
        print("\n".join(f"- {path.relative_to(PACKAGE_DIR.parent)}" for path in code_files(name)))
