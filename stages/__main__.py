"""Run one pipeline stage: `python -m stages <stage> [arguments]` (what `dvc.yaml` calls).

Stages: download, prepare, variant, train, replica, evaluate, plot, report; `check`, which validates
`params.yaml` (every model built against Keras) without touching any data; and `fingerprint`, which
says whether this machine computes the committed bytes. The stages that run a model get the numerics
of `params.yaml: numerics` (threads, oneDNN, its ISA) before TensorFlow starts.
A user error (bad params, bad data) prints one clear message and exits with status 1.

Before any pipeline stage runs, the whole of `params.yaml` is checked as `python -m stages check` checks
it, so a typo in the last model stops `dvc repro` at its first stage, before any download or training.
The check runs in a child process (building models starts TensorFlow, which must start after the
pinned numerics are set) and once per content: a passed check leaves a stamp keyed by the file's bytes,
the checker's code and the package versions, so later stages skip it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# The Pythons the locks are compiled for: pyproject.toml's `requires-python` (README, "Locked, with
# hashes"; tests/test_lock.py checks the locks' headers agree). Read with the standard library alone,
# so that the gate answers on any Python, before the project's packages are imported.
PACKAGE = Path(__file__).resolve().parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"

STAGES = ("download", "prepare", "variant", "train", "replica", "evaluate", "plot", "report", "check", "fingerprint", "compare")
# The stages that run a model, so compute with TensorFlow: they get the pinned numerics.
MODEL_STAGES = ("train", "replica", "evaluate", "plot", "fingerprint")
# The commands that check the whole params file first: every `dvc.yaml` stage.
PRECHECKED = tuple(stage for stage in STAGES if stage not in ("check", "fingerprint", "compare"))
# What `python -m stages check` runs: a change to any of it, or to the packages, checks again.
CHECKER = ("check.py", "params", "training/builder.py")
CHECKED_PACKAGES = ("keras", "pydantic", "tensorflow")


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


def check_stamp(params: Path, package: Path = PACKAGE) -> Path:
    """Where a passed check of `params` is recorded: the user's cache, named by what decides the answer."""
    digest = hashlib.sha256(params.read_bytes())
    for name in CHECKER:
        for source in sorted((package / name).rglob("*.py")) if (package / name).is_dir() else [package / name]:
            digest.update(source.read_bytes())
    for name in CHECKED_PACKAGES:
        digest.update(f"{name}=={importlib.metadata.version(name)};".encode())
    digest.update(sys.version.encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mnist-cnn-dvc" / "params-checked" / digest.hexdigest()


def params_problem(params: Path = Path("params.yaml")) -> str | None:
    """The check's message if `params` has a problem, None if it passes (or this content passed before).

    A stage run outside a project (no params.yaml here) reports its own missing file, as before.
    """
    if not params.is_file():
        return None
    stamp = check_stamp(params)
    if stamp.exists():
        return None
    result = subprocess.run([sys.executable, "-m", "stages", "check", str(params)], capture_output=True, text=True)
    if result.returncode == 0:
        with contextlib.suppress(OSError):  # no writable cache: check again next time
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        return None
    # The check's own message (its stdout); TensorFlow's start-up notices on stderr only if it crashed.
    message = result.stdout.strip() if result.returncode == 1 and result.stdout.strip() else (result.stdout + result.stderr).strip()
    return f"{message}\nerror: stopped before this stage ran: fix {params} (python -m stages check lists every problem)"


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
    if argv[0] in PRECHECKED:
        problem = params_problem()
        if problem:
            print(problem, flush=True)
            return 1
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
