"""What every kind's report does with its entries (one per teacher × prompt or student, naming the
run's JSON files): read them into table rows, and write a report's Markdown and HTML pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from synthdistill.metrics.run_facts import read_json
from synthdistill.reporting import render
from synthdistill.reporting.sections import Section

Row = TypeVar("Row")


def artifact_rows(
    entries: list[dict[str, Any]],
    key: str,
    row: Callable[[dict[str, Any], dict[str, Any]], Row],
    *,
    optional: bool = False,
) -> list[Row]:
    """``row(entry, artifact)`` of each entry, ``artifact`` read from the file its ``key`` names; an entry
    without an optional one (test metrics, ONNX check) is left out, a required one (stats, metadata) is a must."""
    rows = []
    for entry in entries:
        artifact = read_json(entry.get(key) if optional else entry[key])
        if artifact is None and optional:
            continue
        assert artifact is not None
        rows.append(row(entry, artifact))
    return rows


def write_pages(title: str, intro: str, sections: list[Section], outputs: dict[str, str]) -> None:
    """The Markdown and self-contained HTML page of a report without figures (``outputs``: markdown, html)."""
    Path(outputs["markdown"]).write_text(
        render.markdown(title=title, intro=intro, sections=sections, figure_dir="figures") + "\n"
    )
    Path(outputs["html"]).write_text(render.html_page(title=title, intro=intro, sections=sections, figures={}))
