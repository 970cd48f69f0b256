"""Render the report's sections as Markdown and as one self-contained HTML page, from template files.

The templates (templates/report.md.jinja, templates/report.html.jinja with templates/report.css) hold the
page's layout; this module turns each block into what the templates print: a table as Markdown or as
HTML, a figure as a path or as embedded PNG data.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import jinja2

from synthdistill.reporting.sections import Section

TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> jinja2.Environment:
    # trim_blocks/lstrip_blocks: a line holding only a {% tag %} prints nothing, so the templates can be
    # laid out readably. No autoescape: markupsafe writes ' as &#39;, html.escape as &#x27;, and the page
    # has always used html.escape, so the HTML template escapes explicitly with the `esc` filter.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["esc"] = html.escape
    return environment


def _markdown_block(kind: str, value: Any, figure_dir: str) -> str:
    if kind == "text":
        return value
    if kind == "table":
        return value.to_markdown(index=False, disable_numparse=True) if len(value) else "(none)"
    name, alt = value
    return f"![{alt}]({figure_dir}/{name}.png)"


def markdown(*, title: str, intro: str, sections: list[Section], figure_dir: str) -> str:
    """The report as Markdown; figures are linked from ``figure_dir`` (relative to the Markdown file)."""
    shown = [
        {"title": s.title, "blocks": [_markdown_block(kind, value, figure_dir) for kind, value in s.blocks]}
        for s in sections
    ]
    return _environment().get_template("report.md.jinja").render(title=title, intro=intro, sections=shown)


def _html_block(kind: str, value: Any, figures: dict[str, str]) -> dict[str, str]:
    if kind == "text":
        return {"kind": "text", "text": value}
    if kind == "table":
        return {"kind": "html", "html": value.to_html(index=False, escape=True) if len(value) else "<p>(none)</p>"}
    name, alt = value
    return {"kind": "figure", "alt": alt, "data": base64.b64encode(Path(figures[name]).read_bytes()).decode()}


def html_page(*, title: str, intro: str, sections: list[Section], figures: dict[str, str]) -> str:
    """The report as one HTML page with every figure embedded (``figures``: name -> PNG path)."""
    shown = [
        {"title": s.title, "blocks": [_html_block(kind, value, figures) for kind, value in s.blocks]} for s in sections
    ]
    return _environment().get_template("report.html.jinja").render(title=title, intro=intro, sections=shown)
