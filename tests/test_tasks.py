"""Task kinds: a setting of another task kind stops with a message naming the key, and every kind's
steps take the arguments the one script of each step passes."""

from __future__ import annotations

import inspect
import json

import pytest

from synthdistill import SynthDistillError
from synthdistill.tasks import REGISTRY, TASKS, check_task, get_task
from synthdistill.tasks.base import STEPS, Task

from .conftest import REPO


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


# The keyword arguments each step's script passes (scripts/<step>.py), as tasks/base.py documents them.
STEP_ARGUMENTS = {
    "vote": ("iteration_paths", "split_paths", "labels", "settings", "outputs"),
    "export_review": (
        "votes_path",
        "iteration_paths",
        "annotator_paths",
        "labels",
        "settings",
        "teacher",
        "prompt",
        "outputs",
    ),
    "import_review": ("votes_path", "corrections_path", "labels", "labels_out", "audit_out", "settings"),
    "train_student": (
        "paths",
        "teacher",
        "prompt",
        "student",
        "labels",
        "model_dir",
        "metadata_path",
        "threads",
        "name",
    ),
    "export_onnx": ("model_dir", "test_path", "labels", "max_length", "output_dir", "check_path"),
    "evaluate_teacher": ("votes_path", "labels", "output_path"),
    "evaluate_student": ("model_dir", "test_path", "labels", "max_length", "metrics_path", "predictions_path"),
    "compare_models": ("models", "teachers", "students", "test_path", "labels", "output"),
    "report": ("entries", "labels", "outputs", "run"),
    "expert_answers": ("frame", "labels", "settings", "source"),
    "label_counts": ("frame", "splits"),
}
# Called by data.prepare (the prepare_data rule), not by a script of their own.
DATA_STEPS = ("expert_answers", "label_counts")


def test_the_steps_are_the_ones_the_scripts_call():
    assert set(STEP_ARGUMENTS) == set(STEPS)
    data = (REPO / "src" / "synthdistill" / "data" / "__init__.py").read_text()
    for step, arguments in STEP_ARGUMENTS.items():
        script = data if step in DATA_STEPS else (REPO / "scripts" / f"{step}.py").read_text()
        assert f'.step("{step}")' in script
        # Every argument but the positional label files of train_student is passed by name.
        assert all(f"{name}=" in script for name in arguments if name != "paths"), step


@pytest.mark.parametrize("task", TASKS)
def test_every_step_of_every_task_takes_the_arguments_its_script_passes(task):
    """A step whose function drifts from the common signature fails here, not in a Snakemake job."""
    kind = get_task(task)
    for step in kind.steps:
        function = kind.step(step)
        arguments = {name: None for name in STEP_ARGUMENTS[step]}
        if step == "train_student":  # the label files come first, by position
            del arguments["paths"]
            inspect.signature(function).bind(None, **arguments)
        else:
            inspect.signature(function).bind(**arguments)


def test_every_kind_has_the_steps_every_run_needs_and_features_say_the_rest():
    for kind in REGISTRY.values():
        missing = set(STEPS) - set(kind.steps)
        # compare_models is the one optional step, and only a kind with paired tests has it.
        assert missing <= {"compare_models"} and ("compare_models" in kind.steps) == kind.supports("paired_tests")
        assert kind.review_files, kind.name
    with pytest.raises(ValueError, match="unknown steps or features"):
        Task("x", "", ("label",), {"vote": "a:b"}, frozenset({"telepathy"}), ("csv",), REGISTRY["spans"].card)
    with pytest.raises(SynthDistillError, match="task: 'ner' is not one of"):
        get_task("ner")


@pytest.mark.parametrize(
    ("config", "where", "task"),
    [
        ({"architectures": ["BertForTokenClassification"]}, "model", "spans"),
        (
            {"architectures": ["BertForSequenceClassification"], "problem_type": "multi_label_classification"},
            "onnx",
            "multi_label",
        ),
        (
            {"architectures": ["BertForSequenceClassification"], "problem_type": "single_label_classification"},
            ".",
            "single_label",
        ),
        (None, ".", "single_label"),
    ],
)
def test_a_student_folder_says_its_task_kind_through_its_config(tmp_path, config, where, task):
    from synthdistill.students.inference import student_task

    if config is not None:
        (tmp_path / where).mkdir(exist_ok=True)
        (tmp_path / where / "config.json").write_text(json.dumps(config))
    assert student_task(tmp_path) == task
    assert get_task(task).card.pipeline_tag == ("token-classification" if task == "spans" else "text-classification")
