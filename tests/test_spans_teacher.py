"""Task spans with the real embedded teacher: SmolLM2 under constrained decoding answers the
spans_json schema, and every answer is either located in its text or a counted failure."""

from __future__ import annotations

import json

import jsonschema
import pandas as pd
import pytest

from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.span_parsing import spans_json_schema
from synthdistill.tasks.spans import from_json

from .conftest import REPO, annotate_settings

pytestmark = pytest.mark.slow

LABELS = ["ORG", "PERSON", "MONEY", "LOCATION"]
TEXTS = [
    "Harrow Capital closed its third fund at GBP 500 million, above its target.",
    "Amara Osei was appointed finance director of Volta Beverages.",
    "The shares rose 7 percent in early trading after the results.",
]


def test_smollm2_answers_the_spans_schema_and_each_answer_is_located_or_failed(smollm2_teacher, tmp_path):
    template = load_template(REPO / "config" / "prompts" / "spans_json.txt")
    prompts = pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(len(TEXTS))],
            "split": "train",
            "text": TEXTS,
            "messages": [json.dumps(messages_for(template, t, LABELS)) for t in TEXTS],
        }
    )
    frame = annotate(
        prompts,
        smollm2_teacher,
        ResponseCache(tmp_path / "c.sqlite"),
        kind="spans_json",
        labels=LABELS,
        generation={"temperature": 0.7, "top_p": 0.95, "seed": 0, "max_tokens": 160, "structured": True},
        iteration=0,
        **annotate_settings(max_failure_share=1.0),
    )
    schema = spans_json_schema(LABELS)
    assert (frame["output_tokens"] < 160).any(), frame["raw_output"]  # some answers finish: the checks below run
    for row, text in zip(frame.itertuples(), TEXTS, strict=True):
        if row.output_tokens >= 160:
            # Cut at max_tokens inside the constrained JSON: a counted failure, never a partial guess.
            assert row.parse_status == "invalid_json" and pd.isna(row.label)
            continue
        answer = json.loads(row.raw_output)  # constrained and finished: JSON of the schema
        jsonschema.validate(answer, schema)
        mentions = [(span["text"].strip(), span["label"]) for span in answer["spans"]]
        if row.parse_status == "ok":
            located = [(text[s.start : s.end], s.label) for s in from_json(row.label)]
            assert sorted(located) == sorted(mentions)
        else:
            # A mention that is not in the text (SmolLM2 is weak) is a counted failure, never a guess.
            assert row.parse_status == "not_a_label" and pd.isna(row.label) and row.reason.startswith("span ")
