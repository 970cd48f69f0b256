"""Task spans: expert spans in, teacher answers located in the text, the per-span vote."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from synthdistill import SynthDistillError, data
from synthdistill.annotation.span_parsing import locate, parse_spans_json, spans_json_schema
from synthdistill.labels.span_vote import vote, vote_one
from synthdistill.schema import defaults
from synthdistill.tasks.base import EMPTY, INVALID_JSON, NOT_A_LABEL, OK
from synthdistill.tasks.spans import Span, from_json, to_json

from .conftest import REPO

LABELS = ["ORG", "PERSON", "MONEY", "LOCATION"]
TEXT = "Acme said Acme Bank paid Acme EUR 5 million."


def spans_of(parsed_label: str) -> list[tuple[str, str]]:
    return [(TEXT[s.start : s.end], s.label) for s in from_json(parsed_label)]


# --- locating a teacher's answer -------------------------------------------------------------


def test_repeated_mentions_take_the_next_occurrence_in_order():
    spans, failure = locate([("Acme", "ORG"), ("Acme", "ORG"), ("Acme Bank", "ORG")], TEXT)
    assert failure is None
    assert spans == [Span(0, 4, "ORG"), Span(10, 14, "ORG"), Span(10, 19, "ORG")]
    # Each occurrence is used once: a fourth "Acme" exists (in "Acme EUR"), a fifth does not.
    spans, failure = locate([("Acme", "ORG")] * 3, TEXT)
    assert [s.start for s in spans] == [0, 10, 25] and failure is None
    spans, failure = locate([("Acme", "ORG")] * 4, TEXT)
    assert spans == [] and failure == "span 4 'Acme' occurs 3 time(s) in the text, fewer than it is named"


@pytest.mark.parametrize(
    "output",
    [
        '{"spans": [{"text": "Acme Bank", "label": "ORG"}, {"text": "EUR 5 million", "label": "money"}]}',
        'Here: ```json\n[{"label": "ORG", "text": " Acme Bank "}, {"text": "EUR 5 million", "label": "MONEY"}]```',
    ],
)
def test_an_object_or_a_bare_list_parses_to_canonical_spans(output):
    parsed = parse_spans_json(output, LABELS, TEXT)
    assert parsed.status == OK
    assert parsed.label == '[{"start": 10, "end": 19, "label": "ORG"}, {"start": 30, "end": 43, "label": "MONEY"}]'
    assert spans_of(parsed.label) == [("Acme Bank", "ORG"), ("EUR 5 million", "MONEY")]


@pytest.mark.parametrize(
    ("output", "status", "reason"),
    [
        ('{"spans": []}', OK, None),
        ("", EMPTY, None),
        ("no entities here", INVALID_JSON, None),
        ('{"spans": [{"text": "Globex", "label": "ORG"}]}', NOT_A_LABEL, "span 1 'Globex' is not in the text"),
        ('{"spans": [{"text": "acme", "label": "ORG"}]}', NOT_A_LABEL, "span 1 'acme' is not in the text"),
        ('{"spans": [{"text": "Acme", "label": "COMPANY"}]}', NOT_A_LABEL, "label 'COMPANY', not in the label set"),
        ('{"spans": [{"text": "Acme"}]}', NOT_A_LABEL, "not an object with a text and a label"),
    ],
)
def test_failures_are_counted_never_guessed(output, status, reason):
    parsed = parse_spans_json(output, LABELS, TEXT)
    assert parsed.status == status
    assert parsed.label == ("[]" if status == OK else None)
    if reason:
        assert reason in parsed.reason


def test_the_schema_roots_an_object_with_the_closed_label_set():
    schema = spans_json_schema(LABELS)
    assert schema["required"] == ["spans"]
    assert schema["properties"]["spans"]["items"]["properties"]["label"]["enum"] == LABELS


# --- the vote ----------------------------------------------------------------------------------


def answer(*spans: tuple[int, int, str]) -> str:
    return to_json([Span(*s) for s in spans])


def test_a_span_is_kept_when_enough_answering_iterations_found_it():
    acme, bank = (0, 4, "ORG"), (10, 19, "ORG")
    result = vote_one([answer(acme, bank), answer(acme), None, answer(acme)], min_share=0.5)
    # bank: 1 of the 3 that answered (the failed iteration is not counted) < 0.5.
    assert from_json(result["label"]) == [Span(*acme)]
    assert {(d["start"], d["agreement"], d["kept"]) for d in result["spans"]} == {(0, 1.0, True), (10, 1 / 3, False)}
    # Agreement: iterations whose whole answer is the voted set, over all four (failure = dissent).
    assert result["agreement"] == 0.5 and result["answered"] == 3
    assert from_json(vote_one([answer(acme, bank), answer(acme)], 0.5)["label"]) == [Span(*acme), Span(*bank)]
    assert vote_one([answer(acme, bank), answer(acme)], 0.75)["label"] == answer(acme)


def test_an_empty_answer_is_a_vote_for_no_span_and_all_failed_is_no_label():
    assert vote_one(["[]", "[]", answer((0, 4, "ORG"))], 0.5) == {
        "label": "[]",
        "status": "voted",
        "agreement": 2 / 3,
        "spans": [{"start": 0, "end": 4, "label": "ORG", "agreement": 1 / 3, "kept": False}],
        "answered": 3,
    }
    assert vote_one([None, None], 0.5)["label"] is None


def test_overlapping_kept_spans_leave_the_better_supported_one():
    bank, acme, acme_person = (10, 19, "ORG"), (10, 14, "ORG"), (10, 14, "PERSON")
    result = vote_one([answer(bank), answer(bank), answer(acme), answer(acme_person)], 0.25)
    assert from_json(result["label"]) == [Span(*bank)]
    # A tie in votes: the longer span stays.
    assert from_json(vote_one([answer(bank), answer(acme)], 0.5)["label"]) == [Span(*bank)]


def test_vote_frame_keeps_expert_spans_next_to_the_voted_ones():
    items = pd.DataFrame(
        {"id": ["a", "b"], "split": ["train", "test"], "text": [TEXT, "x"], "expert_label": ["[]", None]}
    )
    iterations = [
        pd.DataFrame({"id": ["b", "a"], "label": [None, answer((0, 4, "ORG"))]}),
        pd.DataFrame({"id": ["a", "b"], "label": [answer((0, 4, "ORG")), "[]"]}),
    ]
    votes = vote(iterations, items, 0.5)
    assert votes["label"].tolist() == [answer((0, 4, "ORG")), "[]"]
    assert votes["n_failed"].tolist() == [0, 1] and votes["agreement"].tolist() == [1.0, 0.5]
    assert votes["expert_label"].iloc[0] == "[]" and pd.isna(votes["expert_label"].iloc[1])
    with pytest.raises(SynthDistillError, match="iteration 1 does not cover the same items"):
        vote([iterations[0], iterations[1].head(1)], items, 0.5)


# --- expert spans in the data -----------------------------------------------------------------


def prepare(path, split=None, **dataset):
    settings = {"path": str(path), **dataset}
    if "tokens_column" not in dataset:
        settings.setdefault("text_column", "text")
    split = split or {"test_size": 0.2, "validation_size": 0.2, "seed": 1}
    return data.prepare(settings, LABELS, {**defaults("split"), **split}, task="spans")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


ROWS = [
    {"text": f"Acme {i} paid EUR {i} million.", "spans": [{"start": 0, "end": 4, "label": "ORG"}]} for i in range(10)
]


def test_demo_data_spans_cover_their_words():
    items, summary = prepare(REPO / "data/demo/business_news_entities.jsonl", label_column="spans", id_column="id")
    assert summary["rows_kept"] == 150 and summary["rows_dropped"] == 0
    per_type = [split["ORG"] for split in summary["per_split_and_label"].values()]
    assert sum(per_type) == 166 and set(summary["per_split_and_label"]) == {"train", "validation", "test"}
    row = items.set_index("id").loc["bn-104"]
    assert [(row["text"][s.start : s.end], s.label) for s in from_json(row["expert_label"])] == [
        ("Westfield Mutual", "ORG"),
        ("Grace Liu", "PERSON"),
    ]


@pytest.mark.parametrize("suffix", ["jsonl", "parquet", "csv"])
def test_span_columns_of_every_format_become_canonical_json(tmp_path, suffix):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"d.{suffix}"
    if suffix == "jsonl":
        write_jsonl(path, ROWS)
    elif suffix == "parquet":
        frame.to_parquet(path)
    else:
        frame.assign(spans=frame["spans"].map(json.dumps)).to_csv(path, index=False)
    items, _ = prepare(path, label_column="spans")
    assert set(items["expert_label"]) == {'[{"start": 0, "end": 4, "label": "ORG"}]'}


def test_control_characters_become_spaces_so_offsets_still_hold(tmp_path):
    rows = [*ROWS[1:], {"text": "\x07Acme\x00 paid\tGlobex.", "spans": [{"start": 1, "end": 5, "label": "ORG"}]}]
    items, summary = prepare(write_jsonl(tmp_path / "d.jsonl", rows), label_column="spans")
    row = items.loc[items["row"] == 10].iloc[0]
    assert row["text"] == " Acme  paid\tGlobex."
    assert [row["text"][s.start : s.end] for s in from_json(row["expert_label"])] == ["Acme"]
    assert summary["changed_rows"]["control_characters_removed"] == [10]


def test_tokens_and_bio_tags_become_text_and_spans(tmp_path):
    rows = [
        {
            "tokens": ["Acme", "Bank", "hired", "Ann", "Lee", str(i)],
            "tags": ["B-ORG", "I-ORG", "O", "B-PERSON", "I-PERSON", "O"],
        }
        for i in range(9)
    ]
    # An I- tag after O starts an entity (as conlleval reads it); B- after B- starts a new one.
    rows.append({"tokens": ["Acme", "Globex", "paid"], "tags": ["I-ORG", "B-ORG", "O"]})
    path = tmp_path / "d.parquet"
    pd.DataFrame(rows).to_parquet(path)
    items, _ = prepare(path, tokens_column="tokens", tags_column="tags")
    first = items.loc[items["row"] == 1].iloc[0]
    assert first["text"] == "Acme Bank hired Ann Lee 0"
    assert [(first["text"][s.start : s.end], s.label) for s in from_json(first["expert_label"])] == [
        ("Acme Bank", "ORG"),
        ("Ann Lee", "PERSON"),
    ]
    last = items.loc[items["row"] == 10].iloc[0]
    assert from_json(last["expert_label"]) == [Span(0, 4, "ORG"), Span(5, 11, "ORG")]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            [{"start": 5, "end": 11, "label": "MONEY"}, {"start": 0, "end": 6, "label": "ORG"}],
            r"row 4: spans 'Acme 3' \[0, 6\) ORG and '3 paid' \[5, 11\) MONEY overlap",
        ),
        ([{"start": 20, "end": 40, "label": "ORG"}], r"row 4: span 1 \[20, 40\) ends past the text \(26 characters"),
        ([{"start": 0, "end": 4, "label": "COMPANY"}], r"row 4: span 1 has label 'COMPANY', not one of"),
        ([{"start": 4, "end": 4, "label": "ORG"}], r"row 4: span 1 \[4, 4\) is empty"),
        ([{"start": "0", "end": 4, "label": "ORG"}], r"row 4: span 1 has non-integer offsets"),
        ('[{"start": 0, ', r"row 4: the spans are not valid JSON"),
    ],
)
def test_bad_expert_spans_stop_naming_the_row(tmp_path, bad, message):
    rows = [dict(row) for row in ROWS]
    rows[3]["spans"] = bad
    with pytest.raises(SynthDistillError, match=message):
        prepare(write_jsonl(tmp_path / "d.jsonl", rows), label_column="spans")


def test_bio_tags_that_do_not_fit_their_tokens_stop_naming_the_row(tmp_path):
    rows = [{"tokens": ["Acme", str(i)], "tags": ["B-ORG", "O"]} for i in range(10)]
    rows[6]["tags"] = ["B-ORG"]
    write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(SynthDistillError, match="row 7: 2 tokens but 1 tags"):
        prepare(tmp_path / "d.jsonl", tokens_column="tokens", tags_column="tags")
    rows[6]["tags"] = ["ORG", "O"]
    write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(SynthDistillError, match="row 7: tag 'ORG' of token 'Acme' is not O, B-TYPE or I-TYPE"):
        prepare(tmp_path / "d.jsonl", tokens_column="tokens", tags_column="tags")


# --- review -------------------------------------------------------------------------------------


def test_label_studio_tasks_show_voted_spans_least_agreed_first():
    import xml.etree.ElementTree as ET

    from synthdistill.labels.span_review import label_studio_span_config, label_studio_span_tasks

    items = pd.DataFrame(
        {"id": ["a", "b", "c", "t"], "split": ["train", "validation", "train", "test"], "text": [TEXT, "x", "y", "z"]}
    )
    iterations = [
        pd.DataFrame(
            {"id": ["a", "b", "c", "t"], "label": [answer((10, 19, "ORG"), (30, 43, "MONEY")), "[]", None, "[]"]}
        ),
        pd.DataFrame({"id": ["a", "b", "c", "t"], "label": [answer((10, 19, "ORG")), "[]", None, "[]"]}),
    ]
    tasks = label_studio_span_tasks(vote(iterations, items, 0.5), "smollm2/spans")
    # Test items are never sent for review; every-iteration-failed first, then by agreement.
    assert [(t["data"]["id"], t["data"]["rank"]) for t in tasks] == [("c", 1), ("a", 2), ("b", 3)]
    assert tasks[0]["predictions"] == [] and tasks[2]["predictions"][0]["result"] == []
    regions = tasks[1]["predictions"][0]["result"]
    assert [(r["value"]["text"], r["value"]["labels"], r["score"]) for r in regions] == [
        ("Acme Bank", ["ORG"], 1.0),
        ("EUR 5 million", ["MONEY"], 0.5),
    ]
    assert regions[0]["value"] | {"text": None} == {"start": 10, "end": 19, "text": None, "labels": ["ORG"]}
    config = ET.fromstring(label_studio_span_config(["ORG", "R&D <x>"]))
    labels = config.find("Labels")
    assert labels.get("toName") == "text" and [x.get("value") for x in labels] == ["ORG", "R&D <x>"]


def test_argilla_span_question_suggests_the_voted_spans_and_its_answers_come_back(tmp_path):
    from synthdistill.labels.span_corrections import import_review
    from synthdistill.labels.span_review import export_review

    items = pd.DataFrame(
        {"id": ["a", "b", "c", "t"], "split": ["train", "validation", "train", "test"], "text": [TEXT, "x", "y", "z"]}
    )
    iterations = [
        pd.DataFrame(
            {"id": ["a", "b", "c", "t"], "label": [answer((10, 19, "ORG"), (30, 43, "MONEY")), "[]", None, "[]"]}
        ),
        pd.DataFrame({"id": ["a", "b", "c", "t"], "label": [answer((10, 19, "ORG")), "[]", None, "[]"]}),
    ]
    votes_path = tmp_path / "votes.parquet"
    vote(iterations, items, 0.5).to_parquet(votes_path)
    outputs = {name: str(tmp_path / f"review.{name}") for name in ("label_studio", "label_studio_config", "argilla")}
    export_review(str(votes_path), {}, {}, LABELS, {}, "smollm2", "spans", outputs)
    data = json.loads((tmp_path / "review.argilla").read_text())

    # rg.SpanQuestion over the text field, in the settings' dict form; overlaps off as in the vote.
    assert data["settings"]["questions"] == [
        {
            "name": "spans",
            "type": "span",
            "field": "text",
            "labels": LABELS,
            "allow_overlapping": False,
            "required": True,
        }
    ]
    assert [f["name"] for f in data["settings"]["fields"]] == ["text"]
    declared = {m["name"] for m in data["settings"]["metadata"]}
    # Review order as in Label Studio: every-iteration-failed first, then by agreement; no test item.
    records = data["records"]
    assert [r["id"] for r in records] == ["c", "a", "b"]
    for rank, record in enumerate(records, start=1):
        assert set(record["metadata"]) == declared
        assert record["metadata"] | {"agreement": None} == {
            "rank": rank,
            "split": {"a": "train", "b": "validation", "c": "train"}[record["id"]],
            "agreement": None,
            "answered": {"a": 2, "b": 2, "c": 0}[record["id"]],
            "teacher": "smollm2",
            "prompt": "spans",
        }
    assert records[0]["suggestions"] == {}  # no iteration answered: nothing to suggest
    suggestion = records[1]["suggestions"]["spans"]
    # One score per span (Argilla rejects one score for a list value): each span's own agreement.
    assert suggestion["agent"] == "smollm2/spans" and suggestion["score"] == [1.0, 0.5]
    assert [(TEXT[s["start"] : s["end"]], s["label"]) for s in suggestion["value"]] == [
        ("Acme Bank", "ORG"),
        ("EUR 5 million", "MONEY"),
    ]
    assert records[1]["metadata"]["agreement"] == 0.5
    assert records[2]["suggestions"]["spans"] == {"value": [], "score": [], "agent": "smollm2/spans"}

    # The records export (rg.Record.to_dict, as argilla 2.8 writes it): the reviewer keeps the
    # suggested spans of a and adds the missed "Acme" at 25; b's answer is no entity at all.
    def submitted(value, user):
        return {"spans": [{"value": value, "user_id": user}]}

    records[1]["responses"] = submitted([*suggestion["value"], {"start": 25, "end": 29, "label": "ORG"}], "u1")
    records[2]["responses"] = submitted([], "u2")
    records[0]["responses"] = {"spans": [{"value": [], "user_id": "u3", "status": "draft"}]}  # not submitted
    export = tmp_path / "argilla_export.json"
    export.write_text(json.dumps(records))
    audit = import_review(
        str(votes_path), str(export), LABELS, str(tmp_path / "labels.parquet"), str(tmp_path / "audit.csv"), {}
    )
    reviewed = pd.read_parquet(tmp_path / "labels.parquet").set_index("id")
    assert reviewed.loc["a", "label"] == answer((10, 19, "ORG"), (25, 29, "ORG"), (30, 43, "MONEY"))
    assert reviewed.loc["b", "label"] == "[]" and reviewed.loc["b", "corrected"]
    assert not reviewed.loc["c", "corrected"]
    assert audit[["id", "changed", "reviewer"]].to_dict("records") == [
        {"id": "a", "changed": True, "reviewer": "u1"},
        {"id": "b", "changed": False, "reviewer": "u2"},
    ]
    # An answer past its text stops the import naming the file and the record.
    records[1]["responses"]["spans"][0]["value"][2].update(start=40, end=60)
    export.write_text(json.dumps({"records": records}))
    with pytest.raises(SynthDistillError, match=r"argilla_export.json: row 2 \(id a\): span 3 \[40, 60\) ends past"):
        import_review(str(votes_path), str(export), LABELS, str(tmp_path / "l.parquet"), str(tmp_path / "x.csv"), {})


def test_label_studio_span_corrections_come_back_as_spans_with_an_audit(tmp_path):
    from synthdistill.labels.span_corrections import import_review
    from synthdistill.labels.span_review import label_studio_span_tasks

    items = pd.DataFrame(
        {"id": ["a", "b", "t"], "split": ["train", "validation", "test"], "text": [TEXT, "Globex", "z"]}
    )
    iterations = [pd.DataFrame({"id": ["a", "b", "t"], "label": [answer((0, 4, "ORG")), "[]", "[]"]})]
    votes_path = tmp_path / "votes.parquet"
    vote(iterations, items, 0.5).to_parquet(votes_path)
    tasks = label_studio_span_tasks(pd.read_parquet(votes_path), "smollm2/spans")
    # The reviewer keeps "Acme" of item a and adds the missed amount, as Label Studio exports it.
    region = {"from_name": "label", "to_name": "text", "type": "labels"}
    tasks[0]["annotations"] = [
        {
            "completed_by": {"email": "ann@example.com"},
            "result": [
                {**region, "value": {"start": 0, "end": 4, "text": "Acme", "labels": ["ORG"]}},
                {**region, "value": {"start": 30, "end": 43, "text": "EUR 5 million", "labels": ["MONEY"]}},
            ],
        }
    ]
    tasks[1]["annotations"] = [{"was_cancelled": True, "result": []}]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    audit = import_review(
        str(votes_path), str(export), LABELS, str(tmp_path / "labels.parquet"), str(tmp_path / "audit.csv"), {}
    )
    reviewed = pd.read_parquet(tmp_path / "labels.parquet").set_index("id")
    assert reviewed.loc["a", "label"] == answer((0, 4, "ORG"), (30, 43, "MONEY")) and reviewed.loc["a", "corrected"]
    assert reviewed.loc["a", "voted_label"] == answer((0, 4, "ORG"))
    assert reviewed.loc["b", "label"] == "[]" and not reviewed.loc["b", "corrected"]  # cancelled: not reviewed
    assert audit[["id", "changed", "reviewer"]].to_dict("records") == [
        {"id": "a", "changed": True, "reviewer": "ann@example.com"}
    ]
    # A region past its text stops the import naming the file and row; nothing is applied. (A region
    # that says which text it covers moves onto that text: tests/test_review_imports.py.)
    tasks[0]["annotations"][0]["result"][1]["value"].update(start=40, end=60)
    del tasks[0]["annotations"][0]["result"][1]["value"]["text"]
    export.write_text(json.dumps(tasks))
    with pytest.raises(SynthDistillError, match=r"export.json: row 1 \(id a\): span 2 \[40, 60\) ends past the text"):
        import_review(str(votes_path), str(export), LABELS, str(tmp_path / "l.parquet"), str(tmp_path / "a.csv"), {})
