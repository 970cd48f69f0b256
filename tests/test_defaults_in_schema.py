"""A default is written once, in schemas/config.schema.yaml: a library function does not carry its own
copy as a keyword default, which would drift from the schema's (callers read the value through
synthdistill.schema or synthdistill.settings and pass it).

A parameter is flagged when its name is a key the schema gives a default anywhere (``max_length``,
``cv_folds``, ``seed``, ...). Only ``DIFFERENT_MEANING`` lets a flagged parameter stand, where the name
means something other than the schema's key; an entry that no longer matches fails. (Issue 26 moved the
last copies out.)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import yaml

import synthdistill
from synthdistill.schema import SCHEMA_PATH

# (function, parameter): what the name means here, unlike the schema key of the same name.
DIFFERENT_MEANING = {
    # The review's and few-shot examples' sentence-embedding model: its own batch and token cap,
    # not the student's (students.*.batch_size, students.*.max_length).
    ("synthdistill.annotation.embeddings.embed", "batch_size"),
    ("synthdistill.annotation.embeddings.embed", "max_length"),
    ("synthdistill.labels.review.embed_texts", "batch_size"),
    ("synthdistill.labels.review.embed_texts", "max_length"),
    # One yes/no question per label (label_scores of task multi_label), not prompts.*.examples.per_label
    # (k examples of each label).
    ("synthdistill.annotation.label_scores.scored_probabilities", "per_label"),
    ("synthdistill.annotation.label_scores.content_free_prior", "per_label"),
    ("synthdistill.annotation.prompts.check_template", "per_label"),
    ("synthdistill.annotation.prompts.load_template", "per_label"),
    # The bootstrap's resampling seed, which no config key sets (seed is the split's, a teacher's,
    # a student's or the review's).
    ("synthdistill.evaluation.multi_label_metrics.bootstrap_label_set_intervals", "seed"),
    ("synthdistill.evaluation.multi_label_metrics.paired_bootstrap", "seed"),
    ("synthdistill.metrics.spans.bootstrap_entity_intervals", "seed"),
    ("synthdistill.metrics.stats.bootstrap_intervals", "seed"),
    ("synthdistill.metrics.stats.paired_bootstrap", "seed"),
    ("synthdistill.metrics.stats.compare", "seed"),
    # The few-shot turns or block one prompt is rendered with, not pilot.examples (the few-shot
    # settings the pilot tries).
    ("synthdistill.annotation.prompts.render", "examples"),
    ("synthdistill.annotation.prompts.messages_for", "examples"),
    # Names for messages and logs, not costs.*_hardware.name.
    ("synthdistill.annotation.teachers.make_teacher", "name"),
    ("synthdistill.serving.batcher.MicroBatcher.__init__", "name"),
    ("synthdistill.students.train_step.train_student", "name"),
    # A feedback file and a table of cascade rows, not the cascade section of the config.
    ("synthdistill.reporting.report.build", "feedback"),
    ("synthdistill.reporting.tables.ReportTables.__init__", "cascade"),
    # A predictor's own inference batch (what predict.batch_size: null falls back to), not the
    # student's training batch (students.*.batch_size).
    ("synthdistill.students.inference.TorchPredictor.__init__", "batch_size"),
    ("synthdistill.students.inference.TorchPredictor.from_model", "batch_size"),
    ("synthdistill.students.inference.OnnxPredictor.__init__", "batch_size"),
    ("synthdistill.students.span_onnx.OnnxSpanPredictor.__init__", "batch_size"),
    ("synthdistill.students.token_classification.SpanPredictor.__init__", "batch_size"),
}


def schema_keys_with_defaults() -> set[str]:
    """Every property name the schema gives a default, at any depth."""
    return _keys_with_defaults(yaml.safe_load(SCHEMA_PATH.read_text()))


def _keys_with_defaults(node: Any) -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, spec in (node.get("properties") or {}).items():
            if isinstance(spec, dict) and "default" in spec:
                keys.add(key)
        for value in node.values():
            keys |= _keys_with_defaults(value)
    elif isinstance(node, list):
        for value in node:
            keys |= _keys_with_defaults(value)
    return keys


def public_functions() -> Iterator[tuple[str, Callable]]:
    """(qualified name, function) for every public function of the library, and the public methods and
    ``__init__`` of its public classes; each where it is defined, not where it is imported."""
    for info in pkgutil.walk_packages(synthdistill.__path__, "synthdistill."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value):
                for attribute, member in vars(value).items():
                    if attribute.startswith("_") and attribute != "__init__":
                        continue
                    if isinstance(member, classmethod | staticmethod):
                        member = member.__func__
                    if inspect.isfunction(member):
                        yield f"{module.__name__}.{name}.{attribute}", member


def defaults_the_schema_also_has() -> set[tuple[str, str]]:
    keys = schema_keys_with_defaults()
    return {
        (name, parameter.name)
        for name, function in public_functions()
        for parameter in inspect.signature(function).parameters.values()
        if parameter.default is not inspect.Parameter.empty and parameter.name in keys
    }


def test_the_schema_walk_finds_nested_defaults():
    keys = schema_keys_with_defaults()
    assert {"max_length", "cv_folds", "seed", "max_consecutive_failures", "task"} <= keys
    assert "threshold" not in keys  # described in the schema, with no default there


def test_no_library_function_keeps_its_own_copy_of_a_schema_default():
    found = defaults_the_schema_also_has()
    assert found - DIFFERENT_MEANING == set(), "pass the schema's value from the caller instead"
    assert DIFFERENT_MEANING - found == set(), "no longer a keyword default: remove it from the list"


def test_the_defaults_this_repository_moved_stay_in_the_schema():
    found = defaults_the_schema_also_has()
    moved = {
        ("synthdistill.students.inference.TorchPredictor.__init__", "max_length"),
        ("synthdistill.students.inference.OnnxPredictor.__init__", "max_length"),
        ("synthdistill.students.inference.load_predictor", "max_length"),
        ("synthdistill.labels.review.score_items", "cv_folds"),
        ("synthdistill.labels.review.score_items", "seed"),
        ("synthdistill.labels.review.item_probs", "seed"),
        ("synthdistill.labels.multi_label_review.score_items", "cv_folds"),
        ("synthdistill.labels.multi_label_review.score_items", "seed"),
        ("synthdistill.labels.multi_label_review.one_vs_rest_probs", "seed"),
    }
    assert moved & (found | DIFFERENT_MEANING) == set()
