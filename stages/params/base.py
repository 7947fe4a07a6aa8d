"""Read `params.yaml` as DVC does and validate the sections a stage reads, every problem by key path.

Each concern has its schema (`stages.params.data`, `.training`, `.report`), a pydantic model that is
strict (no silent conversion of `"140"` to 140), rejects unknown keys and is frozen. A stage loads only
the sections its schema names, so the training stages import nothing of the report's rules.
`python -m stages check` validates all of them together.

The file is parsed with ruamel.yaml's safe loader, the YAML 1.2 parser DVC itself uses, so `1e-4` is a
number here as it is in `dvc params diff`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from stages.errors import StageError

PARAMS_FILE = Path("params.yaml")

Schema = TypeVar("Schema", bound=pydantic.BaseModel)
Problem = tuple[str, str]


class Strict(pydantic.BaseModel):
    """Base of every params schema: strict types, no unknown keys, immutable."""

    model_config = pydantic.ConfigDict(strict=True, extra="forbid", frozen=True)


class ParamsError(StageError, ValueError):
    """One or more problems in a params file, each named by its key path."""

    def __init__(self, problems: Iterable[Problem], source: str = str(PARAMS_FILE)) -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  {path}: {message}" for path, message in self.problems]
        super().__init__("\n".join(lines))


def read_yaml(text: str) -> Any:
    """Parse YAML the way DVC does (ruamel.yaml, safe, YAML 1.2)."""
    return YAML(typ="safe", pure=True).load(text)


def read_document(path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    """The parsed file as a mapping; `ParamsError` if it cannot be read or is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ParamsError([("", f"cannot read the file: {error.strerror}")], str(path)) from error
    try:
        document = read_yaml(text)
    except YAMLError as error:
        raise ParamsError([("", f"not valid YAML: {error}")], str(path)) from error
    if not isinstance(document, dict):
        raise ParamsError([("", f"expected a mapping of sections, got {type(document).__name__}")], str(path))
    return document


def key_path(location: Iterable[str | int]) -> str:
    """pydantic's error location as the key path a user reads: `models.model2.layers[3].Conv2D.filters`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            # pydantic marks a bad mapping key by appending "[key]" after the key itself.
            path += " (the name)"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _message(error: Any) -> str:
    text = str(error["msg"])
    if text.startswith("Value error, "):
        text = text[len("Value error, ") :]
    if error["type"] in ("missing", "extra_forbidden"):
        return {"missing": "missing", "extra_forbidden": "unknown key"}[error["type"]]
    value = error.get("input")
    if error["type"].endswith(("_type", "greater_than", "greater_than_equal", "less_than_equal", "less_than", "literal_error", "finite_number")):
        return f"{text}, got {value!r}"
    return text


def problems_of(error: pydantic.ValidationError, prefix: tuple[str, ...] = ()) -> list[Problem]:
    """Every problem pydantic found, as (key path, message)."""
    return [(key_path((*prefix, *item["loc"])), _message(item)) for item in error.errors()]


def validate(schema: type[Schema], document: dict[str, Any], source: str = str(PARAMS_FILE)) -> Schema:
    """`document`'s sections that `schema` declares, validated; `ParamsError` listing every problem."""
    sections = {name: document[name] for name in schema.model_fields if name in document}
    try:
        return schema.model_validate(sections)
    except pydantic.ValidationError as error:
        raise ParamsError(problems_of(error), source) from None


def load(schema: type[Schema], path: Path | str = PARAMS_FILE) -> Schema:
    """Read `path` and validate the sections of it that `schema` declares."""
    return validate(schema, read_document(path), str(path))
