"""The documentation: a short README, links that resolve, and a config reference in step with the schema."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CONFIG_README = REPO / "config" / "README.md"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
DOC_PAGES = sorted((REPO / "docs").glob("*.md"))
ALL_PAGES = [README, CONFIG_README, REPO / "bench" / "README.md", *DOC_PAGES]
SETUP_COMMANDS = [
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && snakemake --cores 2',
    ". .venv/bin/activate && python -m pytest -q",
]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _generator():
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "docs" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    anchors = set()
    for heading in re.findall(r"^#+\s+(.*)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_readme_is_short_and_keeps_the_setup_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 150, f"README.md has {len(lines)} lines; move detail into docs/ (limit 149)"
    for command in SETUP_COMMANDS:
        assert command in lines, f"README.md lost its setup command: {command}"


def test_readme_links_every_docs_page():
    linked = {(README.parent / link.split("#")[0]).resolve() for link in _links(README)}
    missing = [page.name for page in DOC_PAGES if page.resolve() not in linked]
    assert DOC_PAGES, "docs/ has no pages"
    assert not missing, f"docs pages not linked from README.md: {missing}"
    for page in (CONFIG_README, REPO / "bench" / "README.md"):
        assert page.resolve() in linked, f"{page.relative_to(REPO)} is not linked from README.md"


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_at_existing_files_and_headings(page):
    broken = []
    for link in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto: ...
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no heading #{anchor} in {target.name})")
    assert not broken, f"broken links in {page.relative_to(REPO)}: {broken}"


def test_config_readme_is_generated_from_the_schema():
    expected = _generator().generate(SCHEMA)
    actual = CONFIG_README.read_text(encoding="utf-8") if CONFIG_README.exists() else ""
    assert actual == expected, (
        "config/README.md is out of date with schemas/config.schema.yaml: "
        "run `python docs/config_reference.py --write` and commit the result"
    )


def _key_paths(node: dict, path: str = ""):
    """Every key path of the schema, walked independently of the generator."""
    for name, child in node.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        yield key
        yield from _key_paths(child, key)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield f"{path}.<name>"
        yield from _key_paths(extra, f"{path}.<name>")


def test_config_reference_lists_every_schema_key():
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    text = _generator().render(schema)
    paths = list(_key_paths(schema))
    # nested objects and name-keyed entries must all be there
    for sample in ("dataset.hub.name", "costs.student_hardware.preset", "teachers.<name>.temperature"):
        assert sample in paths
    missing = [key for key in paths if f"| `{key}` |" not in text]
    assert not missing, f"keys missing from the generated config reference: {missing}"


def test_config_reference_shows_defaults_and_escapes_table_cells():
    schema = {
        "type": "object",
        "properties": {
            "section": {
                "type": "object",
                "description": "a | b <name>",
                "default": {},
                "properties": {"sep": {"type": "string", "default": "\n"}, "n": {"type": "integer", "minimum": 1}},
            }
        },
    }
    text = _generator().render(schema)
    assert "| `section` | object | `{}` | a \\| b &lt;name&gt; |" in text
    assert '| `section.sep` | string | `"\\n"` |' in text
    assert "| `section.n` | integer, ≥ 1 |  |" in text
