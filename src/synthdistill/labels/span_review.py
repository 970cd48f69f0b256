"""Review files for task spans: Label Studio tasks whose ``Labels`` predictions are the voted spans,
most uncertain items first, and the labelling config that shows them on the text."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd

from synthdistill.spans import from_json

# Items people can correct: test items stay as the frozen expert benchmark never seen in training.
REVIEWED_SPLITS = ("train", "validation")


def review_order(votes: pd.DataFrame) -> pd.DataFrame:
    """Train and validation items, the least agreed first (every iteration failed: first of all)."""
    items = votes.loc[votes["split"].isin(REVIEWED_SPLITS)].copy()
    items["rank_key"] = items["agreement"].where(items["voted_label"].notna(), -1.0)
    return items.sort_values(["rank_key", "id"], kind="stable").drop(columns="rank_key").reset_index(drop=True)


def label_studio_span_tasks(votes: pd.DataFrame, model_version: str) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``data`` with the text, vote agreement and review rank;
    ``predictions`` with one ``labels`` region per voted span (scored by its own agreement)."""
    tasks = []
    for rank, row in enumerate(review_order(votes).to_dict("records"), start=1):
        agreement = {(d["start"], d["end"], d["label"]): d["agreement"] for d in json.loads(row["span_agreement"])}
        task: dict[str, Any] = {
            "data": {
                "id": str(row["id"]),
                "text": row["text"],
                "split": row["split"],
                "agreement": float(row["agreement"]),
                "answered": int(row["n_answered"]),
                "rank": rank,
            },
            "predictions": [],
        }
        if isinstance(row["voted_label"], str):
            regions = [
                {
                    "id": f"{row['id']}-{number}",
                    "from_name": "label",
                    "to_name": "text",
                    "type": "labels",
                    "score": float(agreement.get((span.start, span.end, span.label), 0.0)),
                    "value": {
                        "start": span.start,
                        "end": span.end,
                        "text": row["text"][span.start : span.end],
                        "labels": [span.label],
                    },
                }
                for number, span in enumerate(from_json(row["voted_label"]), start=1)
            ]
            task["predictions"].append(
                {"model_version": model_version, "score": float(row["agreement"]), "result": regions}
            )
        tasks.append(task)
    return tasks


def label_studio_span_config(labels: list[str]) -> str:
    """The labelling config (ElementTree escapes labels such as ``R&D``)."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Teacher agreement: $agreement (review rank $rank)")
    spans = ET.SubElement(view, "Labels", name="label", toName="text")
    for label in labels:
        ET.SubElement(spans, "Label", value=label)
    ET.SubElement(view, "Text", name="text", value="$text", granularity="symbol")
    ET.indent(view, space="  ")
    return ET.tostring(view, encoding="unicode") + "\n"


def write_span_review(votes_path: str, labels: list[str], source: str, outputs: dict[str, str]) -> None:
    """The export_review files of a spans run: Label Studio tasks JSON and labelling config."""
    votes = pd.read_parquet(votes_path)
    tasks = label_studio_span_tasks(votes, source)
    Path(outputs["label_studio"]).write_text(json.dumps(tasks, indent=1, ensure_ascii=False) + "\n")
    Path(outputs["label_studio_config"]).write_text(label_studio_span_config(labels))
