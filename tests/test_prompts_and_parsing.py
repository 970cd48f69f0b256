import json

import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.parsing import parse
from synthdistill.annotation.prompts import load_template, messages_for, render
from synthdistill.tasks.base import EMPTY, INVALID_JSON, NOT_A_LABEL, OK
from synthdistill.tasks.multi_label import label_set_json

from .conftest import LABELS, REPO


def test_render_fills_text_and_labels_and_keeps_json_braces():
    template = 'Labels: {labels}. Answer {"label": "..."} for: {text}'
    assert render(template, "Sales rose.", LABELS) == (
        'Labels: positive, negative, neutral. Answer {"label": "..."} for: Sales rose.'
    )


def test_messages_carry_optional_system_prompt():
    assert messages_for("{text}", "hi", LABELS) == [{"role": "user", "content": "hi"}]
    assert messages_for("{text}", "hi", LABELS, system="be brief")[0] == {"role": "system", "content": "be brief"}


def test_template_without_text_placeholder_is_rejected(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("Classify this: {labels}")
    with pytest.raises(SynthDistillError, match=r"bad.txt has no \{text\} placeholder"):
        load_template(path)


@pytest.mark.parametrize(
    "template, message",
    [
        ("Classify {text} as {label}", r"unknown placeholder\(s\) \{label\}"),
        ("Example: {example}\n{text}", r"unknown placeholder\(s\) \{example\}"),
        ("One of {labels.\nText: {text}", r"line 1: \{labels has no closing brace"),
        # Issue 25, item 14: spaces inside the braces; sent as written until refused.
        ("One of { labels }.\nText: {text}", r"t.txt: line 1: '\{ labels \}' has spaces inside its braces.*\{labels\}"),
        ("One of {labels}.\n\nText: {text }", r"line 3: '\{text \}' has spaces inside its braces"),
        (
            "Examples:\n{\texamples}\n{text}",
            r"line 2: .*has spaces inside its braces, so it would be sent as written; write \{examples\}",
        ),
    ],
)
def test_unknown_or_unclosed_placeholders_are_rejected(tmp_path, template, message):
    path = tmp_path / "t.txt"
    path.write_text(template)
    with pytest.raises(SynthDistillError, match=message):
        load_template(path)


def test_json_braces_are_not_placeholders(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text('Answer {"reason": "...", "label": "<one of: {labels}>"} or { "label": "x" } for {text}')
    assert load_template(path).startswith("Answer")


def test_shipped_templates_load():
    for name in ("label", "cot_json"):
        assert "{text}" in load_template(REPO / "config" / "prompts" / f"{name}.txt")


@pytest.mark.parametrize(
    "output, label, status",
    [
        ("positive", "positive", OK),
        ("  **Negative.**\nBecause sales fell", "negative", OK),
        ('"neutral"', "neutral", OK),
        ("neutral leaning towards positive", None, NOT_A_LABEL),
        ("bullish", None, NOT_A_LABEL),
        ("", None, EMPTY),
        ("   \n", None, EMPTY),
    ],
)
def test_label_parsing_is_strict(output, label, status):
    parsed = parse("label", output, LABELS)
    assert (parsed.label, parsed.status) == (label, status)


PUNCTUATED = ["Other (specify)", "U.S.", "neutral"]


@pytest.mark.parametrize(
    "output, label",
    [
        # Issue 25, item 3: labels that begin or end with markup characters parse, exact or wrapped.
        ("Other (specify)", "Other (specify)"),
        ("U.S.", "U.S."),
        ("u.s.", "U.S."),
        ("**U.S.**", "U.S."),
        ('"Other (specify)".', "Other (specify)"),
        ("U.S.\nBecause it names the country", "U.S."),
        ("Other", None),
        ("U.S.A.", None),
    ],
)
def test_labels_with_punctuation_at_either_end_parse(output, label):
    assert parse("label", output, PUNCTUATED).label == label
    answer = json.dumps({"reason": "r", "label": output.split("\n")[0]})
    assert parse("cot_json", answer, PUNCTUATED).label == label
    expected = label_set_json([label], PUNCTUATED) if label else None
    assert parse("labels_json", json.dumps({"labels": [output.split("\n")[0]]}), PUNCTUATED).label == expected


def test_markup_that_two_labels_could_explain_is_not_guessed():
    labels = ["U.S", "U.S.", "neutral"]
    assert parse("label", "U.S.", labels).label == "U.S."  # the exact label always wins
    assert parse("label", "**U.S**", labels).label == "U.S"  # "U.S." is not in it
    assert parse("label", "**U.S.**", labels).status == NOT_A_LABEL  # "U.S" bolded and ended, or "U.S." bolded


@pytest.mark.parametrize(
    "output, label, reason, status",
    [
        ('{"reason": "profit up", "label": "positive"}', "positive", "profit up", OK),
        ('Sure!\n```json\n{"reason": "cuts", "label": "Negative"}\n```', "negative", "cuts", OK),
        ('{"reason": "mixed", "label": "neutral leaning positive"}', None, "mixed", NOT_A_LABEL),
        ('{"reason": "no label"}', None, "no label", NOT_A_LABEL),
        ('{"reason": "cut off", "label": "posi', None, None, INVALID_JSON),
        ("positive", None, None, INVALID_JSON),
    ],
)
def test_cot_json_parsing(output, label, reason, status):
    parsed = parse("cot_json", output, LABELS)
    assert (parsed.label, parsed.reason, parsed.status) == (label, reason, status)
