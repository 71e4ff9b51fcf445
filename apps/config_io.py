"""A frozen config as one readable JSON document: how the launcher hands each child process its whole config,
and what `pdsim <role> --config FILE` reads and `--print-config` writes.

One function pair, generic over the config dataclasses (nested dataclasses, enums, tuples, `X | None`), built on
pydantic's `TypeAdapter`: it (de)structures standard dataclasses without changing them, and builds them through
their own `__init__`, so every `__post_init__` check still runs. Never pickle: a person can read and write these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


def config_to_json(config: object) -> str:
    """`config` (a frozen config dataclass) as indented JSON; enums as their values, tuples as lists."""
    return TypeAdapter(type(config)).dump_json(config, indent=2).decode() + "\n"


def config_from_json(cls: type[T], text: str) -> T:
    """The `cls` that `text` describes; fields it leaves out take their defaults. Raises ValueError naming the bad
    field, for a malformed document, a value `__post_init__` refuses, or a field `cls` does not have."""
    adapter = TypeAdapter(cls)
    try:
        config = adapter.validate_json(text)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the document'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"bad {cls.__name__} config: {problems}") from None
    # pydantic ignores keys a dataclass lacks; a misspelt field in a hand-written file must not pass silently.
    unknown = _unknown_keys(json.loads(text), adapter.dump_python(config))
    if unknown:
        raise ValueError(f"bad {cls.__name__} config: unknown field(s) {', '.join(unknown)}")
    return config


def read_config(cls: type[T], path: Path | str) -> T:
    try:
        return config_from_json(cls, Path(path).read_text())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def write_config(config: object, path: Path) -> Path:
    path.write_text(config_to_json(config))
    return path


def _unknown_keys(given: Any, known: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the keys in `given` (the parsed document) that `known` (the config as a dict) lacks."""
    if not isinstance(given, dict) or not isinstance(known, dict):
        return []
    found: list[str] = []
    for key, value in given.items():
        if key not in known:
            found.append(prefix + key)
        else:
            found += _unknown_keys(value, known[key], f"{prefix}{key}.")
    return found
