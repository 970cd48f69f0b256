"""Task kinds: a setting of another task kind stops with a message naming the key."""

from __future__ import annotations

import pytest

from synthdistill.errors import SynthDistillError
from synthdistill.tasks import check_task


def config(task: str, kind: str, **extra) -> dict:
    return {"task": task, "prompts": {"p": {"template": "t.txt", "kind": kind}}, "students": {}, **extra}


@pytest.mark.parametrize(
    ("task", "kind"), [("single_label", "label"), ("multi_label", "labels_json"), ("spans", "spans_json")]
)
def test_each_task_takes_its_own_prompt_kinds(task, kind):
    assert check_task(config(task, kind)) == task


@pytest.mark.parametrize(
    ("task", "kind", "message"),
    [
        (
            "multi_label",
            "label",
            "prompts.p.kind: 'label' is a single_label prompt; task multi_label takes labels_json",
        ),
        ("single_label", "spans_json", "prompts.p.kind: 'spans_json' is a spans prompt"),
        ("spans", "labels_json", "task spans takes spans_json"),
    ],
)
def test_a_prompt_of_another_task_stops_naming_it(task, kind, message):
    with pytest.raises(SynthDistillError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_task(config(task, kind))


def test_single_label_settings_stop_a_multi_label_run_naming_each_key():
    settings = config(
        "multi_label",
        "labels_json",
        ensembles={"e": {}},
        split={"gold_dev_size": 50},
        students={"s": {"targets": "votes"}},
    )
    with pytest.raises(SynthDistillError) as error:
        check_task(settings)
    for key in ("ensembles", "split.gold_dev_size", "students.s.targets"):
        assert key in str(error.value)


def test_bio_columns_are_for_spans_only():
    with pytest.raises(SynthDistillError, match="dataset.tags_column"):
        check_task(config("multi_label", "labels_json", dataset={"tags_column": "tags"}))
    assert check_task(config("spans", "spans_json", dataset={"tokens_column": "t", "tags_column": "g"})) == "spans"
