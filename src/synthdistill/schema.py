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
