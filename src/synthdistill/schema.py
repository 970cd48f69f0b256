"""Defaults from the config schema, the one place they are written.

Snakemake fills them into the config when it validates it; library functions called on their
own (from a test, a benchmark or a notebook) read the same values here instead of keeping copies.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


@cache
def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def defaults(*path: str) -> dict[str, Any]:
    """``{key: default}`` of the object at ``path`` in the config: ``defaults("review")``,
    ``defaults("students", "*")`` for every student (``*`` steps into a mapping's values)."""
    node = _schema()
    for key in path:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return {key: spec["default"] for key, spec in node.get("properties", {}).items() if "default" in spec}


def with_defaults(settings: dict[str, Any] | None, *path: str) -> dict[str, Any]:
    """``settings`` with the schema's defaults for the keys it leaves out (or sets to null where the
    schema's default is not null)."""
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    return {**defaults(*path), **given}


_SCALARS: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _allowed_types(spec: dict[str, Any]) -> list[str]:
    kinds = spec.get("type", [])
    return [kinds] if isinstance(kinds, str) else list(kinds)


def typed_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the strings the schema types as numbers, booleans or null read as such, in place.

    Snakemake reads a nested ``--config`` value with YAML's BaseLoader, so in
    ``--config 'self_consistency={iterations: 1}'`` the 1 arrives as the string "1" and validation
    would refuse it; a key the schema also allows a string for is left as written.
    """
    _retype(config, _schema())
    return config


def _retype(value: Any, spec: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        properties = spec.get("properties", {})
        extra = spec.get("additionalProperties")
        for key, item in value.items():
            child = properties.get(key, extra if isinstance(extra, dict) else None)
            if child is not None:
                value[key] = _retype(item, child)
        return value
    if isinstance(value, list) and isinstance(spec.get("items"), dict):
        return [_retype(item, spec["items"]) for item in value]
    kinds = _allowed_types(spec)
    if isinstance(value, str) and "string" not in kinds and any(k in _SCALARS for k in kinds):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        wanted = tuple(t for k in kinds for t in _SCALARS.get(k, ()))
        # bool is an int in Python: "true" must not pass for an integer key.
        if isinstance(parsed, wanted) and not (isinstance(parsed, bool) and bool not in wanted):
            return parsed
    return value
