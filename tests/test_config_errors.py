"""Schema errors in words: each names the key, what is wrong and what to write instead."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from synthdistill import SynthDistillError
from synthdistill.schema import SCHEMA_PATH, check_against_schema

CONFIG = yaml.safe_load((SCHEMA_PATH.parents[1] / "config" / "config.yaml").read_text())


def problems(change: dict[str, Any]) -> str:
    config = copy.deepcopy(CONFIG)
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[last] = value
    with pytest.raises(SynthDistillError) as caught:
        check_against_schema(config)
    return str(caught.value)


def test_the_shipped_config_fits():
    check_against_schema(copy.deepcopy(CONFIG))


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"dataset.text_colum": "body"}, "dataset.text_colum: unknown key; did you mean text_column?"),
        ({"teachers.smollm2.temprature": 0.2}, "teachers.smollm2.temprature: unknown key; did you mean temperature?"),
        ({"task": "single_lable"}, "task: 'single_lable' is not one of single_label, multi_label, spans (did you mean"),
        ({"dataset.max_items": "ten"}, "dataset.max_items: 'ten' is not a whole number or null; write a whole number"),
        ({"labels": ["positive", "positive", "neutral"]}, "labels: positive written more than once; list each once"),
        ({"labels": ["positive", "neutral "]}, "labels[1]: 'neutral ' has the wrong form (a label: any text without"),
        ({"labels": ["positive"]}, "labels: has 1, needs at least 2 entries"),
        ({"students.minilm.epochs": 0}, "students.minilm.epochs: 0 is out of range; write a value at least 1"),
        ({"teachers.best": {"backend": "llama_cpp"}}, "teachers: 'best' is a reserved name"),
        ({"teachers.my teacher": {"backend": "llama_cpp"}}, "teachers: the name 'my teacher' may hold only letters"),
        (
            {"teachers.x": {"model_path": "m.gguf"}},
            "teachers.x.backend: missing; add it (openai_batch, anthropic_batch",
        ),
        (
            {"dataset.text_columns": ["title", "body"]},
            "dataset: set exactly one of dataset.text_column (one column), dataset.text_columns (several, joined) "
            "and dataset.tokens_column (task spans: tokens + BIO tags), and the others to null",
        ),
        ({"dataset.text_columns": ["title", "body"]}, "set now: text_column: 'text', text_columns: ['title', 'body']"),
        (
            {"dataset.hub": {"name": "x"}},
            "dataset: set exactly one of dataset.path (a CSV, TSV, Parquet or JSONL file)",
        ),
    ],
)
def test_each_error_names_the_key_and_what_to_write(change, expected):
    message = problems(change)
    assert expected in message
    # None of jsonschema's own dump: no subschema, no repeated section.
    assert "Failed validating" not in message and "{'oneOf'" not in message


def test_every_error_of_a_config_is_listed_at_once():
    message = problems({"task": "spanz", "dataset.text_colum": "body", "students.minilm.epochs": 0})
    assert message.count("\n- ") == 3


def test_text_columns_on_top_of_the_default_config_fit_with_text_column_null():
    config = copy.deepcopy(CONFIG)
    config["dataset"].update(text_columns=["title", "body"], text_column=None)
    check_against_schema(config)


def _choices_without_a_message(node: Any, inside_property_names: bool = False) -> list[Any]:
    found = []
    if isinstance(node, dict):
        if not inside_property_names and any(k in node for k in ("oneOf", "anyOf", "not")) and "message" not in node:
            found.append(node)
        for key, value in node.items():
            found += _choices_without_a_message(value, inside_property_names or key == "propertyNames")
    elif isinstance(node, list):
        for value in node:
            found += _choices_without_a_message(value, inside_property_names)
    return found


def test_every_choice_in_the_schema_says_in_words_what_it_wants():
    """oneOf/anyOf/not have no key of their own to blame: each carries a message (propertyNames errors
    are worded by check_against_schema itself)."""
    assert _choices_without_a_message(yaml.safe_load(SCHEMA_PATH.read_text())) == []
