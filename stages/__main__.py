"""Run one pipeline stage: `python -m stages <stage> [arguments]` (what `dvc.yaml` calls).

Stages: download, prepare, variant, train, replica, evaluate, plot, report; `check`, which validates
`params.yaml` (every model built against Keras) without touching any data; and `fingerprint`, which
says whether this machine computes the committed bytes. The stages that run a model get the numerics
of `params.yaml: numerics` (threads, oneDNN, its ISA) before TensorFlow starts.
A user error (bad params, bad data) prints one clear message and exits with status 1.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# The Pythons the locks are compiled for: pyproject.toml's `requires-python` (README, "Locked, with
# hashes"; tests/test_lock.py checks the locks' headers agree). Read with the standard library alone,
# so that the gate answers on any Python, before the project's packages are imported.
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

STAGES = ("download", "prepare", "variant", "train", "replica", "evaluate", "plot", "report", "check", "fingerprint")
# The stages that run a model, so compute with TensorFlow: they get the pinned numerics.
MODEL_STAGES = ("train", "replica", "evaluate", "plot", "fingerprint")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


@contextlib.contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """Hold back what C++ libraries write to file descriptor 2, and replay it only on failure.

    TensorFlow's oneDNN, CUDA-probing and CPU-feature notices are written by C++ before Python
    logging can be configured, and TF_CPP_MIN_LOG_LEVEL no longer silences all of them.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def python_range(pyproject: Path = PYPROJECT) -> tuple[tuple[int, int], tuple[int, int]]:
    """(lowest supported, first unsupported) minor versions, from `requires-python = ">=X.Y,<X.Z"`."""
    text = pyproject.read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*"\s*>=\s*(\d+)\.(\d+)\s*,\s*<\s*(\d+)\.(\d+)\s*"', text, re.MULTILINE)
    if not match:
        raise ValueError(f'{pyproject}: no `requires-python = ">=X.Y,<X.Z"` line in [project]')
    low_major, low_minor, high_major, high_minor = map(int, match.groups())
    return (low_major, low_minor), (high_major, high_minor)


def python_problem(version: tuple[int, ...] = tuple(sys.version_info[:3]), pyproject: Path = PYPROJECT) -> str | None:
    """The line that stops a Python outside the locks' range, None inside it."""
    try:
        low, high = python_range(pyproject)
    except (OSError, ValueError) as error:
        return f"error: cannot read the supported Pythons: {error}"
    if low <= tuple(version[:2]) < high:
        return None
    supported = [f"{low[0]}.{minor}" for minor in range(low[1], high[1])] if low[0] == high[0] else [f"{low[0]}.{low[1]}+"]
    running = ".".join(map(str, version[:3]))
    return (
        f"error: this project's locks (requirements.txt, requirements-dev.txt) are for Python >={low[0]}.{low[1]},<{high[0]}.{high[1]} "
        f"(pyproject.toml requires-python); this is Python {running}. Create the venv with one of: {', '.join(f'python{v}' for v in supported)}."
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    problem = python_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    # After the gate: these need the locked packages (pydantic), which another Python may lack.
    from stages.errors import StageError
    from stages.params.base import read_document, validate
    from stages.params.numerics import NumericsSection
    from stages.training.environment import apply_numerics, apply_threads, read_cpu

    if not argv or argv[0] not in STAGES:
        print(f"usage: python -m stages {{{','.join(STAGES)}}} [arguments]", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # DVCLive announces the experiment it logs to at INFO; the epoch lines say what matters.
    logging.getLogger("dvclive").setLevel(logging.WARNING)
    try:
        numerics = None
        if argv[0] in MODEL_STAGES:
            # Before TensorFlow is imported: it reads its oneDNN switch and oneDNN its ISA cap once, at start.
            numerics = validate(NumericsSection, read_document()).numerics
            for line in apply_numerics(numerics, read_cpu()):
                logging.getLogger("stages").warning(line)
        with _native_stderr_quiet():
            module = importlib.import_module(f"stages.{argv[0]}")
            if numerics is not None:
                apply_threads(numerics)
            if "tensorflow" in sys.modules:
                # The first device query prints the CUDA and CPU-feature notices; do it while quiet.
                sys.modules["tensorflow"].config.list_physical_devices()
        module.main(argv[1:])
    except StageError as error:
        logging.getLogger("stages").error(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
