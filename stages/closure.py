"""Which of our modules a stage's command reads: the import closure of its `stages` module.

`dvc.yaml` lists these files as each stage's code deps (a test checks they agree), and the train
stage's resume key hashes the same files, so neither list is kept by hand. The closure is read from
the code with `ast`, without importing anything: every `import stages.x` and `from stages[.x]
import y` at any depth of a module, followed transitively.

Rule for what is left out: `stages/__init__.py`, `stages/__main__.py` (the entry point that picks
the stage) and `stages/errors.py` (the error type) cannot change an output, and are imported by
every stage, so they are not deps; an edit to them reruns nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "stages"
PACKAGE_DIR = Path(__file__).resolve().parent
NOT_DEPS = frozenset({"__init__", "__main__", "errors"})


def _imported(module: str, package_dir: Path) -> set[str]:
    """The `stages` modules that `stages.<module>` imports directly."""
    tree = ast.parse((package_dir / f"{module}.py").read_text(encoding="utf-8"), filename=f"{module}.py")
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            # `from stages import figures` imports a module; `from stages.io import x` names one.
            names = [f"{node.module}.{alias.name}" for alias in node.names] if node.module == PACKAGE else [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1 and (package_dir / f"{parts[1]}.py").is_file():
                found.add(parts[1])
    return found


def module_closure(module: str, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """`module` and every `stages` module it reaches, sorted, less the NOT_DEPS rule."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(_imported(current, package_dir) - seen)
    return sorted(seen - NOT_DEPS)


def code_files(module: str, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The files of `module_closure(module)`."""
    return [package_dir / f"{name}.py" for name in module_closure(module, package_dir)]
