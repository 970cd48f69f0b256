"""Defaults from the config schema, the one place they are written.

Snakemake fills them into the config when it validates it; library functions called on their
own (from a test, a benchmark or a notebook) read the same values here instead of keeping copies.
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import best_match

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


def check_against_schema(config: dict[str, Any]) -> None:
    """Stop with every way ``config`` breaks the schema, each in words: the key, what is wrong and what
    to write instead (jsonschema's own message dumps the whole section and its subschemas)."""
    from jsonschema import Draft202012Validator

    from synthdistill import SynthDistillError

    errors = sorted(Draft202012Validator(_schema()).iter_errors(config), key=lambda e: [str(p) for p in e.path])
    if errors:
        problems = list(dict.fromkeys(line for error in errors for line in describe_error(error)))
        raise SynthDistillError(
            f"the config does not fit {SCHEMA_PATH.name} (its descriptions say what each key takes):\n- "
            + "\n- ".join(problems)
        )


def _key(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".") or "the config"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping (key: value lines)",
    "null": "null",
}


def _hint(spec: Any) -> str:
    description = spec.get("description") if isinstance(spec, dict) else None
    return f" ({description})" if description else ""


def describe_error(error: Any) -> list[str]:
    """One line per problem in a jsonschema ``ValidationError``, naming the dotted key."""
    key, kind, value, spec, instance = (
        _key(error.path),
        error.validator,
        error.validator_value,
        error.schema,
        error.instance,
    )
    if "propertyNames" in error.relative_schema_path:
        if kind == "not":
            return [
                f"{key}: {instance!r} is a reserved name ({', '.join(map(repr, spec['not']['enum']))} stand for the "
                "expert labels and the labeller chosen on gold dev); choose another name"
            ]
        return [f"{key}: the name {instance!r} may hold only letters, digits, '_' and '-'; rename it"]
    if kind == "additionalProperties":
        known = list(spec.get("properties", {}))
        lines = []
        for extra in [k for k in instance if k not in known]:
            close = difflib.get_close_matches(extra, known, n=1)
            instead = f"did you mean {close[0]}?" if close else f"the keys here are {', '.join(known)}"
            lines.append(f"{_key([*error.path, extra])}: unknown key; {instead}")
        return lines
    if kind == "required":
        return [
            f"{_key([*error.path, missing])}: missing; add it{_hint(spec.get('properties', {}).get(missing))}"
            for missing in value
            if missing not in instance
        ]
    if kind == "type":
        wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in ([value] if isinstance(value, str) else value))
        return [f"{key}: {_shown(instance)} is not {wanted}; write {wanted}{_hint(spec)}"]
    if kind == "enum":
        close = difflib.get_close_matches(str(instance), [str(v) for v in value], n=1)
        guess = f" (did you mean {close[0]}?)" if close else ""
        return [f"{key}: {_shown(instance)} is not one of {', '.join(map(str, value))}{guess}{_hint(spec)}"]
    bounds = {
        "minimum": "at least",
        "exclusiveMinimum": "above",
        "maximum": "at most",
        "exclusiveMaximum": "below",
    }
    if kind in bounds:
        return [f"{key}: {_shown(instance)} is out of range; write a value {bounds[kind]} {value}{_hint(spec)}"]
    if kind in ("minItems", "minProperties"):
        return [f"{key}: has {len(instance)}, needs at least {value} entries{_hint(spec)}"]
    if kind == "uniqueItems":
        repeated = sorted({str(v) for v in instance if instance.count(v) > 1})
        return [f"{key}: {', '.join(repeated)} written more than once; list each once"]
    if kind == "minLength":
        return [f"{key}: empty; write some text{_hint(spec)}"]
    if kind == "pattern":
        return [f"{key}: {_shown(instance)} has the wrong form{_hint(spec) or f' (it must match {value})'}"]
    if "message" in spec:
        named = {k for branch in spec.get(kind, []) for k in branch.get("required", [])}
        given = [f"{k}: {_shown(instance[k])}" for k in instance if k in named and instance[k] is not None]
        return [f"{key}: {spec['message']}; set now: {', '.join(given) or 'none of them'}"]
    # A oneOf/anyOf without a message of its own: the branch that came closest says what is wrong.
    if error.context:
        return describe_error(best_match(error.context))
    return [f"{key}: {error.message}"]
