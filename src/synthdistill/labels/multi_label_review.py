"""Review files of a multi_label vote: the train and validation items, least agreed first, for people
to correct; as CSV and XLSX (formula-escaped, labels.review), Argilla 2.x records with a
``multi_label_selection`` question, and Label Studio tasks with multiple ``Choices``. The teacher's
voted set is the suggestion (prediction) everywhere; an item without a vote has none."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.label_sets import read_label_set
from synthdistill.labels.review import write_csv, write_xlsx
from synthdistill.names import REVIEW_SPLITS

log = logging.getLogger(__name__)


def review_table(votes: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The review rows: items without a vote first, then by whole-set agreement, then by the least
    agreed label (a split decision on one label is what a person should settle)."""
    items = votes.loc[votes["split"].isin(REVIEW_SPLITS)].copy()
    agreement_columns = [f"agreement_{x}" for x in labels]
    items["least_label_agreement"] = items[agreement_columns].min(axis=1)
    items["uncertain_labels"] = [
        "|".join(x for x in labels if row[f"agreement_{x}"] < 1.0) for row in items.to_dict("records")
    ]
    items["has_vote"] = items["voted_label"].notna()
    items = items.sort_values(["has_vote", "agreement", "least_label_agreement", "id"], kind="stable")
    columns = ["id", "split", "text", "voted_label", "vote_status", "agreement", "uncertain_labels"]
    table = items[columns + [f"share_{x}" for x in labels] + ["n_failed"]].reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def _voted(row: dict[str, Any]) -> list[str] | None:
    return read_label_set(row["voted_label"]) if isinstance(row["voted_label"], str) else None


def argilla_records(table: pd.DataFrame, labels: list[str], agent: str) -> dict[str, Any]:
    """Argilla 2.x settings (a ``labels`` MultiLabelQuestion, not required: the empty set is an
    answer) and records with the voted set as suggestion, in the dict form of ``rg.Record``."""
    records = []
    for row in table.to_dict("records"):
        voted = _voted(row)
        records.append(
            {
                "id": str(row["id"]),
                "fields": {"text": row["text"]},
                "metadata": {
                    "rank": int(row["rank"]),
                    "split": row["split"],
                    "agreement": float(row["agreement"]),
                    **{f"share_{x}": None if pd.isna(row[f"share_{x}"]) else float(row[f"share_{x}"]) for x in labels},
                },
                "suggestions": (
                    {"labels": {"value": voted, "score": float(row["agreement"]), "agent": agent}}
                    if voted is not None
                    else {}
                ),
            }
        )
    settings = {
        "fields": [{"name": "text", "type": "text"}],
        "questions": [{"name": "labels", "type": "multi_label_selection", "labels": labels, "required": False}],
        "metadata": [{"name": "split", "type": "terms"}, {"name": "agreement", "type": "float"}],
    }
    return {"settings": settings, "records": records}


def label_studio_tasks(table: pd.DataFrame, labels: list[str], model_version: str) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``data`` with the text and vote, ``predictions`` with the voted set
    as the choices of a multiple-choice control."""
    tasks = []
    for row in table.to_dict("records"):
        voted = _voted(row)
        task: dict[str, Any] = {
            "data": {
                "id": str(row["id"]),
                "text": row["text"],
                "voted_labels": ", ".join(voted) if voted else ("(none)" if voted is not None else "(no vote)"),
                "agreement": float(row["agreement"]),
                "rank": int(row["rank"]),
            },
            "predictions": [],
        }
        if voted is not None:
            task["predictions"].append(
                {
                    "model_version": model_version,
                    "score": float(row["agreement"]),
                    "result": [
                        {"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": voted}}
                    ],
                }
            )
        tasks.append(task)
    return tasks


def label_studio_config(labels: list[str]) -> str:
    """The labelling config: multiple choices (ElementTree escapes labels such as ``R&D``)."""
    view = ET.Element("View")
    ET.SubElement(view, "Text", name="text", value="$text")
    ET.SubElement(view, "Header", value="Teacher: $voted_labels (agreement $agreement)")
    choices = ET.SubElement(view, "Choices", name="labels", toName="text", choice="multiple", showInLine="true")
    for label in labels:
        ET.SubElement(choices, "Choice", value=label)
    ET.indent(view, space="  ")
    return ET.tostring(view, encoding="unicode") + "\n"


def export_review(votes_path: str, labels: list[str], source: str, outputs: dict[str, str]) -> pd.DataFrame:
    """The export_review rule of task multi_label: CSV, XLSX, Argilla and Label Studio files."""
    table = review_table(pd.read_parquet(votes_path), labels)
    write_csv(table, outputs["csv"])
    write_xlsx(table, outputs["xlsx"])
    Path(outputs["argilla"]).write_text(json.dumps(argilla_records(table, labels, source), indent=1) + "\n")
    Path(outputs["label_studio"]).write_text(json.dumps(label_studio_tasks(table, labels, source), indent=1) + "\n")
    Path(outputs["label_studio_config"]).write_text(label_studio_config(labels))
    log.info(
        "%s: %d items for review, %d without full agreement", source, len(table), int((table["agreement"] < 1).sum())
    )
    return table
