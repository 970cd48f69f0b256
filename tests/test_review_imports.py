"""Review exports as Label Studio and Argilla write them, and as they come back broken or ambiguous:
structurally broken files stop naming the file and row on every import path (single-label,
multi-label, spans), span offsets are checked against the text they say they cover, and when several
people answer one item the documented answer wins and every answer stays in the audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.labels.corrections import import_review
from synthdistill.labels.multi_label_corrections import import_review as import_label_set_review
from synthdistill.labels.span_corrections import import_review as import_span_review
from synthdistill.labels.span_vote import vote as span_vote
from synthdistill.tasks.spans import Span, to_json

LABELS = ["positive", "negative", "neutral"]
SET_LABELS = ["billing", "bug", "feature_request"]
SPAN_LABELS = ["ORG", "MONEY"]
SPAN_TEXT = "Shares of Acme based in Acme City rose; Acme paid EUR 5 million."


def single_votes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["i1", "i2", "i3"],
            "split": ["train", "validation", "test"],
            "text": ["good", "bad", "meh"],
            "label": ["positive", "negative", "neutral"],
            "agreement": [1.0, 0.5, 1.0],
            "vote_status": "voted",
        }
    )


def set_votes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["i1", "i2", "i3"],
            "split": ["train", "validation", "test"],
            "text": ["a", "b", "c"],
            "label": ['["billing"]', "[]", '["bug"]'],
            "agreement": [1.0, 0.5, 1.0],
            "vote_status": "voted",
        }
    )


def span_votes(text: str = SPAN_TEXT) -> pd.DataFrame:
    items = pd.DataFrame({"id": ["i1", "i2", "i3"], "split": ["train", "validation", "test"], "text": [text, "x", "z"]})
    iterations = [pd.DataFrame({"id": ["i1", "i2", "i3"], "label": [to_json([]), "[]", "[]"]})]
    return span_vote(iterations, items, 0.5)


def run_single(tmp_path: Path, export: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    votes_path = tmp_path / "votes.parquet"
    single_votes().to_parquet(votes_path)
    out, audit_out = tmp_path / "labels.parquet", tmp_path / "audit.csv"
    import_review(str(votes_path), str(export), LABELS, str(out), str(audit_out), {})
    return pd.read_parquet(out).set_index("id"), pd.read_csv(audit_out, keep_default_na=False)


def run_sets(tmp_path: Path, export: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    votes_path = tmp_path / "votes.parquet"
    set_votes().to_parquet(votes_path)
    out, audit_out = tmp_path / "labels.parquet", tmp_path / "audit.csv"
    import_label_set_review(
        str(votes_path), str(export), SET_LABELS, str(out), str(audit_out), {"label_delimiter": "|"}
    )
    return pd.read_parquet(out).set_index("id"), pd.read_csv(audit_out, keep_default_na=False)


def run_spans(tmp_path: Path, export: Path, text: str = SPAN_TEXT) -> tuple[pd.DataFrame, pd.DataFrame]:
    votes_path = tmp_path / "votes.parquet"
    span_votes(text).to_parquet(votes_path)
    out, audit_out = tmp_path / "labels.parquet", tmp_path / "audit.csv"
    import_span_review(str(votes_path), str(export), SPAN_LABELS, str(out), str(audit_out), {})
    return pd.read_parquet(out).set_index("id"), pd.read_csv(audit_out, keep_default_na=False)


def write(tmp_path: Path, data: Any, name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# --- Label Studio and Argilla answers of each task kind, as the tools export them -----------------


def ls_choices(*choices: str, control: str = "label") -> dict[str, Any]:
    return {"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": list(choices)}}


def ls_region(start: int, end: int, label: str, text: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"start": start, "end": end, "labels": [label]}
    if text is not None:
        value["text"] = text
    return {"from_name": "label", "to_name": "text", "type": "labels", "value": value}


def ls_task(item_id: str, *annotations: dict[str, Any], task_id: int = 1) -> dict[str, Any]:
    return {"id": task_id, "data": {"id": item_id, "text": "..."}, "annotations": list(annotations)}


def ls_annotation(results: list[dict[str, Any]], who: str, **extra: Any) -> dict[str, Any]:
    return {"completed_by": {"email": who}, "was_cancelled": False, "result": results, **extra}


def ar_record(item_id: str, question: str, *answers: tuple[Any, str]) -> dict[str, Any]:
    responses = [{"value": value, "user_id": user, "status": "submitted"} for value, user in answers]
    return {"id": item_id, "fields": {"text": "..."}, "responses": {question: responses}}


# Each import path: its runner, a valid Label Studio result list and a valid Argilla record.
PATHS: dict[str, tuple[Callable[..., Any], list[dict[str, Any]], dict[str, Any]]] = {
    "single_label": (run_single, [ls_choices("neutral")], ar_record("i1", "label", ("neutral", "u1"))),
    "multi_label": (
        run_sets,
        [ls_choices("bug", control="labels")],
        ar_record("i1", "labels", (["bug"], "u1")),
    ),
    "spans": (
        run_spans,
        [ls_region(10, 14, "ORG", "Acme")],
        ar_record("i1", "spans", ([{"start": 10, "end": 14, "label": "ORG"}], "u1")),
    ),
}


def label_studio_breakages(results: list[dict[str, Any]]) -> dict[str, tuple[list[Any], str]]:
    """Broken Label Studio exports (a valid task first, the broken one second) and what the error says."""
    good = ls_task("i1", ls_annotation(results, "ann"), task_id=11)
    broken_value = [{**results[0], "value": None}]
    wrong_list = [{**results[0], "value": {**results[0]["value"], "choices": "bug", "labels": "ORG"}}]
    return {
        "annotations null": ([good, {**ls_task("i2", task_id=12), "annotations": None}], "annotations is null"),
        "task a number": ([good, 7], "the task is int 7, not an object"),
        "task a string": ([good, "i2"], "the task is str 'i2', not an object"),
        "data a list": ([good, {"id": 12, "data": ["i2"], "annotations": []}], "the task's data is list"),
        "annotation a string": ([good, ls_task("i2", "ann")], "annotations entry 1 is str 'ann', not an object"),
        "result null": ([good, ls_task("i2", {"completed_by": 1, "result": None})], "result is null"),
        "result entry a list": ([good, ls_task("i2", ls_annotation([[1]], "bob"))], "result entry 1 is list"),
        "value null": ([good, ls_task("i2", ls_annotation(broken_value, "bob"))], "result's value is null"),
        "choices or labels not a list": (
            [good, ls_task("i2", ls_annotation(wrong_list, "bob"))],
            "is str, not a list",
        ),
    }


def argilla_breakages(record: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    (question,) = record["responses"]
    flat = {"id": "i2", "responses": [{"question_name": question, "value": None}, "bob"]}
    return {
        "record a number": ([record, 3], "the record is int 3, not an object"),
        "record null": ({"records": [record, None]}, "the record is null, not an object"),
        "response a string": ([record, {"id": "i2", "responses": {question: ["bob"]}}], "entry 1 is str 'bob'"),
        "responses of a question an object": (
            [record, {"id": "i2", "responses": {question: {"value": 1}}}],
            f"responses.{question} is dict, not a list",
        ),
        "flat response a string": ([record, flat], "responses entry 2 is str 'bob', not an object"),
    }


CASES = [
    pytest.param(kind, "label_studio", name, id=f"{kind}-label_studio-{name}")
    for kind in PATHS
    for name in label_studio_breakages(PATHS[kind][1])
] + [
    pytest.param(kind, "argilla", name, id=f"{kind}-argilla-{name}")
    for kind in PATHS
    for name in argilla_breakages(PATHS[kind][2])
]


@pytest.mark.parametrize("kind, tool, breakage", CASES)
def test_a_structurally_broken_export_stops_naming_the_file_and_row(tmp_path, kind, tool, breakage):
    run, results, record = PATHS[kind]
    cases = label_studio_breakages(results) if tool == "label_studio" else argilla_breakages(record)
    data, expected = cases[breakage]
    # The valid first task or record alone imports: only the broken second one stops the import.
    valid = data[:1] if isinstance(data, list) else data["records"][:1]
    reviewed, _ = run(tmp_path, write(tmp_path, valid))
    assert reviewed.loc["i1", "corrected"]
    export = write(tmp_path, data, "broken.json")
    out = tmp_path / "labels.parquet"
    out.unlink()
    with pytest.raises(SynthDistillError) as error:
        run(tmp_path, export)
    message = str(error.value)
    assert message.startswith(f"{export}: row 2"), message
    assert expected in message
    if isinstance(data, list) and isinstance(data[1], dict) and breakage != "data a list":
        assert "(id i2)" in message  # the item's id, where the broken task or record has one
    assert not out.exists()


# --- span offsets against the text the region says it covers ---------------------------------------


def test_a_label_studio_region_one_off_moves_to_its_text_as_the_issue_reproduces_it(tmp_path, caplog):
    """The region {start: s+1, end: s+1+len(w), text: w} once became 'ased ' instead of 'based'."""
    s = SPAN_TEXT.index("based")
    regions = [ls_region(s + 1, s + 1 + len("based"), "ORG", "based"), ls_region(10, 14, "ORG", "Acme")]
    reviewed, audit = run_spans(tmp_path, write(tmp_path, [ls_task("i1", ls_annotation(regions, "ann"))]))
    spans = json.loads(reviewed.loc["i1", "label"])
    assert [SPAN_TEXT[x["start"] : x["end"]] for x in spans] == ["Acme", "based"]
    assert audit["new_label"].tolist() == [reviewed.loc["i1", "label"]]
    assert f"row 1 (id i1): span 1 [{s + 1}, {s + 6}) covers 'ased ', not its text 'based'; moved to" in caplog.text


def test_offsets_shifted_by_emoji_in_utf16_land_on_the_nearest_occurrence_of_their_text(tmp_path):
    # Label Studio counts an emoji as two UTF-16 code units: each one before a span puts its offsets
    # one character too far.
    text = "🚀🚀 Acme rose. Acme paid EUR 5 million to Acme."
    money = len(text[: text.index("EUR")].encode("utf-16-le")) // 2
    second = text.index("Acme paid")
    regions = [
        ls_region(second + 2, second + 6, "ORG", "Acme"),  # shifted by the two emoji: "me p" there
        ls_region(money, money + 13, "MONEY", "EUR 5 million"),
    ]
    reviewed, _ = run_spans(tmp_path, write(tmp_path, [ls_task("i1", ls_annotation(regions, "ann"))]), text)
    spans = json.loads(reviewed.loc["i1", "label"])
    # The nearest "Acme" to the given start is the second one, not the first or the last.
    assert [(x["start"], text[x["start"] : x["end"]]) for x in spans] == [
        (second, "Acme"),
        (text.index("EUR"), "EUR 5 million"),
    ]
    # Equally near occurrences: the earlier one (those shifts only move offsets later).
    twice = "ab Acme  Acme"
    regions = [ls_region(6, 10, "ORG", "Acme")]  # 3 from "Acme" at 3, and 3 from "Acme" at 9
    reviewed, _ = run_spans(tmp_path, write(tmp_path, [ls_task("i1", ls_annotation(regions, "ann"))]), twice)
    assert json.loads(reviewed.loc["i1", "label"])[0]["start"] == 3


def test_a_region_whose_text_the_item_does_not_contain_stops_naming_the_row(tmp_path):
    regions = [ls_region(10, 14, "ORG", "Acme"), ls_region(15, 20, "ORG", "Globex")]
    export = write(tmp_path, [ls_task("i2", ls_annotation([], "ann")), ls_task("i1", ls_annotation(regions, "ann"))])
    with pytest.raises(SynthDistillError) as error:
        run_spans(tmp_path, export)
    assert str(error.value).startswith(
        f"{export}: row 2 (id i1): span 2 [15, 20) covers 'based', not its text 'Globex'"
    )
    assert not (tmp_path / "labels.parquet").exists()


def test_argilla_and_csv_span_answers_that_carry_text_are_checked_the_same_way(tmp_path):
    s = SPAN_TEXT.index("Acme City")
    shifted = [{"start": s + 1, "end": s + 10, "label": "ORG", "text": "Acme City"}]
    reviewed, _ = run_spans(tmp_path, write(tmp_path, [ar_record("i1", "spans", (shifted, "u1"))]))
    assert json.loads(reviewed.loc["i1", "label"]) == [{"start": s, "end": s + 9, "label": "ORG"}]
    table = tmp_path / "corrections.csv"
    pd.DataFrame({"id": ["i1"], "label": [json.dumps([{**shifted[0], "text": "Initech"}])]}).to_csv(table, index=False)
    with pytest.raises(SynthDistillError, match=r"corrections.csv: row 1 \(id i1\): span 1 .* not its text 'Initech'"):
        run_spans(tmp_path, table)


# --- several reviewers on one item --------------------------------------------------------------


def test_two_label_studio_reviewers_the_last_or_the_ground_truth_wins_and_the_audit_keeps_both(tmp_path, caplog):
    ann, bob = ls_annotation([ls_choices("neutral")], "ann"), ls_annotation([ls_choices("negative")], "bob")
    agreeing = ls_annotation([ls_choices("negative")], "cy")
    export = write(tmp_path, [ls_task("i1", ann, bob), ls_task("i2", bob, agreeing)])
    reviewed, audit = run_single(tmp_path, export)
    assert reviewed.loc["i1", "label"] == "negative"  # the last annotation, as before
    assert audit[["id", "new_label", "reviewer", "reviewers_disagree"]].values.tolist() == [
        ["i1", "negative", "bob", True],
        ["i2", "negative", "cy", False],
    ]
    assert json.loads(audit.loc[0, "answers"]) == [
        {"reviewer": "ann", "label": "neutral"},
        {"reviewer": "bob", "label": "negative"},
    ]
    assert f"{export}: reviewers gave different answers for 1 item(s): row 1 (id i1)" in caplog.text

    # An annotation marked as ground truth in Label Studio wins over a later one.
    export = write(tmp_path, [ls_task("i1", {**ann, "ground_truth": True}, bob)])
    reviewed, audit = run_single(tmp_path, export)
    assert reviewed.loc["i1", "label"] == "neutral" and audit.loc[0, "reviewer"] == "ann"
    assert audit.loc[0, "reviewers_disagree"] and len(json.loads(audit.loc[0, "answers"])) == 2


def test_two_argilla_reviewers_the_last_submitted_wins_and_the_audit_keeps_both(tmp_path):
    record = ar_record("i1", "label", ("positive", "u1"), ("neutral", "u2"))
    record["responses"]["label"].append({"value": "negative", "user_id": "u3", "status": "draft"})
    reviewed, audit = run_single(tmp_path, write(tmp_path, {"records": [record]}))
    assert reviewed.loc["i1", "label"] == "neutral" and audit.loc[0, "reviewer"] == "u2"
    assert json.loads(audit.loc[0, "answers"]) == [
        {"reviewer": "u1", "label": "positive"},
        {"reviewer": "u2", "label": "neutral"},
    ]  # a draft is no answer
    assert audit.loc[0, "reviewers_disagree"]


def test_reviewers_of_sets_and_spans_disagree_only_on_different_answers(tmp_path):
    # The same set chosen in another order is one answer; spans are compared as canonical JSON.
    same = [
        ls_annotation([ls_choices("bug", "billing", control="labels")], "ann"),
        ls_annotation([ls_choices("billing", "bug", control="labels")], "bob"),
    ]
    other = [ls_annotation([ls_choices("bug", control="labels")], "ann"), ls_annotation([], "bob")]
    _, audit = run_sets(tmp_path, write(tmp_path, [ls_task("i1", *same), ls_task("i2", *other)]))
    assert audit["reviewers_disagree"].tolist() == [False, True]
    assert [a["label"] for a in json.loads(audit.loc[1, "answers"])] == ['["bug"]', "[]"]

    first = [ls_region(10, 14, "ORG", "Acme"), ls_region(50, 63, "MONEY", "EUR 5 million")]
    second = [ls_region(50, 63, "MONEY", "EUR 5 million"), ls_region(10, 14, "ORG", "Acme")]
    third = [ls_region(10, 14, "ORG", "Acme")]
    tasks = [ls_task("i1", ls_annotation(first, "ann"), ls_annotation(second, "bob"))]
    _, audit = run_spans(tmp_path, write(tmp_path, tasks))
    assert not audit.loc[0, "reviewers_disagree"]
    tasks = [ls_task("i1", ls_annotation(first, "ann"), ls_annotation(third, "bob"))]
    reviewed, audit = run_spans(tmp_path, write(tmp_path, tasks))
    assert audit.loc[0, "reviewers_disagree"] and reviewed.loc["i1", "label"] == to_json([Span(10, 14, "ORG")])
    assert [a["reviewer"] for a in json.loads(audit.loc[0, "answers"])] == ["ann", "bob"]
