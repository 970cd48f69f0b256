"""What every task kind's review export is made of, built the same way for each: the export step's
inputs and outputs, an Argilla record, a Label Studio task with the teacher's prediction, and a
Label Studio labelling config. Only what a kind shows or asks differs (labels.review,
labels.multi_label_review, labels.span_review)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ReviewJob:
    """What the export_review step is given beside the votes (tasks.base names the arguments)."""

    iteration_paths: dict[str, str]
    annotator_paths: dict[str, str]
    labels: list[str]
    settings: dict[str, Any]
    teacher: str
    prompt: str

    @property
    def source(self) -> str:
        """The agent of the Argilla suggestions and model version of the Label Studio predictions."""
        return f"synthdistill:{self.teacher}/{self.prompt}"


@dataclass(frozen=True)
class ReviewExport:
    """The review files of one teacher × prompt, before they are written."""

    argilla: dict[str, Any]
    label_studio: list[dict[str, Any]]
    label_studio_config: str
    # The CSV and XLSX rows, which the step returns; None: the kind writes no spreadsheet.
    table: pd.DataFrame | None = None
    # The spans files were always written with non-ASCII text as it is; the others \u-escape it.
    ensure_ascii: bool = True
    # What the log line says after the counts every scored kind logs.
    note: str = ""


def argilla_record(
    row: dict[str, Any], rank: int, fields: dict[str, Any], metadata: dict[str, Any], suggestions: dict[str, Any]
) -> dict[str, Any]:
    """One Argilla 2.x record in the dict form of ``rg.Record``; its metadata start with what every
    kind's do (review rank, split, vote agreement), then the kind's own ``metadata``."""
    common = {"rank": rank, "split": row["split"], "agreement": float(row["agreement"])}
    return {"id": str(row["id"]), "fields": fields, "metadata": {**common, **metadata}, "suggestions": suggestions}


def scored_record(
    row: dict[str, Any], fields: dict[str, Any], metadata: dict[str, Any], suggestions: dict[str, Any]
) -> dict[str, Any]:
    """The Argilla record of a row of a scored review table: its rank, split and agreement,
    cleanlab's flag and label quality, then the kind's own ``metadata``."""
    quality = None if pd.isna(row.get("label_quality")) else float(row["label_quality"])
    scores = {"label_issue": str(bool(row["label_issue"])).lower(), "label_quality": quality}
    return argilla_record(row, int(row["rank"]), fields, {**scores, **metadata}, suggestions)


def scored_task(
    row: dict[str, Any],
    shown: dict[str, Any],
    control: str,
    choices: list[str] | None,
    model_version: str,
    more: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Label Studio task of a row of a scored review table. Its data: id and text, what the kind
    shows of the vote, agreement, cleanlab's flag, review rank, then ``more``; its prediction: the
    voted ``choices`` of the ``control`` (None: the item has no vote, so no prediction)."""
    data = {
        "id": str(row["id"]),
        "text": row["text"],
        **shown,
        "agreement": float(row["agreement"]),
        "label_issue": bool(row["label_issue"]),
        "rank": int(row["rank"]),
        **(more or {}),
    }
    result = None
    if choices is not None:
        result = [{"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": choices}}]
    return label_studio_task(data, model_version, float(row["agreement"]), result)


def label_studio_task(
    data: dict[str, Any], model_version: str, score: float, result: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A Label Studio import task: ``data`` for the view and the teacher's answer as its one
    prediction (``result`` None: the item has no vote, so no prediction)."""
    task: dict[str, Any] = {"data": data, "predictions": []}
    if result is not None:
        task["predictions"].append({"model_version": model_version, "score": score, "result": result})
    return task


def choices_config(labels: list[str], header: str, name: str, choice: str, reasons: bool = False) -> str:
    """A labelling config with one ``Choices`` control over the text, built with ElementTree so that
    a label such as ``R&D`` or one holding quotes is escaped and stays one Choice value instead of
    breaking or extending the XML. ``reasons``: show the teacher's reasons under the header."""
    view = ET.Element("View")
    ET.SubElement(view, "Text", name="text", value="$text")
    ET.SubElement(view, "Header", value=header)
    if reasons:
        ET.SubElement(view, "Text", name="reasons", value="$reasons")
    choices = ET.SubElement(view, "Choices", name=name, toName="text", choice=choice, showInLine="true")
    for label in labels:
        ET.SubElement(choices, "Choice", value=label)
    return config_text(view)


def config_text(view: ET.Element) -> str:
    """A labelling config's XML, indented as Label Studio shows it."""
    ET.indent(view, space="  ")
    return ET.tostring(view, encoding="unicode") + "\n"
