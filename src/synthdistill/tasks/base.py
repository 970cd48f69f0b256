"""What a task kind is to the pipeline (the prompt kinds it takes, what it supports, the function
behind each of its steps), and the words every kind's parser shares: the statuses, ``Parsed`` and
``match_label``.

Every rule after the vote is written once; its script asks the run's task for the step's function
(``get_task(name).step("vote")``) and calls it with the step's arguments below. A step is named by its
import path, as plug-ins are in entry points: the task kinds sit below every stage of the library
(the stages read the task's vocabulary), so they name the stage functions instead of importing them,
and a vote job never loads torch for the student's step. Adding a kind means one module in this
package that fills a ``Task``, the step functions it names, and its tests.

The steps and the arguments their functions take (keyword names as written):

- ``vote(iteration_paths, split_paths, labels, settings, outputs)``: ``settings`` is config ``vote``;
  ``outputs`` holds ``votes``, ``train_csv``, ``stats``.
- ``export_review(votes_path, iteration_paths, annotator_paths, labels, settings, teacher, prompt,
  outputs)``:
  ``settings`` is the review scoring settings; ``outputs`` the task's ``review_files``.
- ``import_review(votes_path, corrections_path, labels, labels_out, audit_out, settings)``, returns
  the audit frame; ``settings`` holds ``label_delimiter``.
- ``train_student(paths, *, teacher, prompt, student, labels, model_dir, metadata_path, threads, name)``.
- ``export_onnx(model_dir, test_path, labels, max_length, output_dir, check_path)``.
- ``evaluate_teacher(votes_path, labels, output_path)``.
- ``evaluate_student(model_dir, test_path, labels, max_length, metrics_path, predictions_path)``.
- ``compare_models(models, teachers, students, test_path, labels, output)`` (feature ``paired_tests``).
- ``report(entries, labels, outputs, run)``: ``entries`` holds ``teachers`` and ``students`` (and
  ``cascades``), ``run`` the run-wide files and facts (rules/report.smk).
The last two are the dataset's, called by ``data.prepare`` (the prepare_data rule), not by a script:
- ``expert_answers(frame, labels, settings, source)``: the expert answer of each row of
  ``frame["expert_label"]`` in the kind's stored form (missing where the row has none); an answer
  outside ``labels`` stops naming its row. ``settings`` is config ``dataset``.
- ``label_counts(frame, splits)``: the expert answers counted per split (summary.json).

The statuses, ``Parsed`` and ``match_label`` sit here, apart from the parsers' dispatcher
(``annotation.parsing.parse``), so each kind's parser can import them without importing the
dispatcher that imports it.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

STEPS = (
    "vote",
    "export_review",
    "import_review",
    "train_student",
    "export_onnx",
    "evaluate_teacher",
    "evaluate_student",
    "compare_models",
    "report",
    "expert_answers",
    "label_counts",
)

# What a kind may support beyond the steps every kind has. A rule or a config key that needs one is
# used only by kinds that declare it (rules/*.smk, check_task).
FEATURES = frozenset(
    {
        "crowdlab",  # review scores every iteration of every teacher as an annotator
        "ensembles",  # config ensembles
        "gold_dev",  # split.gold_dev_size and students_learn_from: best
        "few_shot",  # split.shots_per_label, prompts.*.examples
        "label_names",  # dataset.label_names (integer labels)
        "soft_targets",  # students.*.targets
        "bio_tags",  # dataset.tokens_column and tags_column
        "paired_tests",  # compare_models
        "costs",  # benchmark_student and the report's cost, break-even and Pareto sections
        "cascade",  # cascade, cascade.feedback
        "learning_curve",
        "active",  # annotate.strategy: active (the train pool labelled in rounds)
        "pilot",  # pilot.enabled (prompt candidates scored on gold dev before the pool is labelled)
        "stratified_split",  # the splits keep the expert label's shares
        "text_offsets",  # answers point into the text by character: cleaning keeps every offset
    }
)


@dataclass(frozen=True)
class StudentCard:
    pipeline_tag: str
    tags: tuple[str, ...]
    selection_metric: str
    onnx_compared: str


@dataclass(frozen=True)
class Task:
    """One task kind: ``steps`` maps every step of STEPS the kind runs to ``module:function``."""

    name: str
    description: str
    prompt_kinds: tuple[str, ...]
    steps: Mapping[str, str]
    features: frozenset[str]
    # The files export_review writes, by output name (their paths: rules/review.smk).
    review_files: tuple[str, ...]
    # The student's card (students/model_card.py): the Hub pipeline and tags, the metric that picks
    # the kept epoch, and the ONNX check's key that is set only when it compared both models with
    # expert labels.
    card: StudentCard
    # The figures and CSV tables the report writes beside report.md and report.html, by output name
    # (their paths: REPORT_FILES in rules/report.smk).
    report_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = (set(self.steps) - set(STEPS)) | (self.features - FEATURES)
        if unknown:
            raise ValueError(f"task {self.name}: unknown steps or features {sorted(unknown)}")

    def supports(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise ValueError(f"{feature!r} is not a task feature: {sorted(FEATURES)}")
        return feature in self.features

    def step(self, name: str) -> Callable[..., Any]:
        """The function behind one of this kind's steps, imported now."""
        if name not in self.steps:
            raise ValueError(f"task {self.name} has no step {name!r}")
        module, _, function = self.steps[name].partition(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


OK = "ok"
NOT_A_LABEL = "not_a_label"
INVALID_JSON = "invalid_json"
EMPTY = "empty"
ERROR = "request_error"

# Markup a chat model wraps around a bare word (``**neutral**``, ``"neutral".``, ``(neutral)``).
_WRAPPING = frozenset(" \t\r\n\"'`*_.:;!()[]")


@dataclass(frozen=True)
class Parsed:
    label: str | None
    reason: str | None
    status: str


def _wrapped_in_markup(answer: str, label: str) -> bool:
    """Whether ``answer`` is ``label`` with only markup characters before and after it (both lower-cased).
    The label itself is never stripped, so a label that begins or ends with those characters
    (``U.S.``, ``Other (specify)``) still matches: the markup is what the answer has beyond it."""
    start = answer.find(label)
    while start != -1:
        before, after = answer[:start], answer[start + len(label) :]
        if _WRAPPING.issuperset(before) and _WRAPPING.issuperset(after):
            return True
        if not _WRAPPING.issuperset(before):
            return False  # a later occurrence has even more in front of it
        start = answer.find(label, start + 1)
    return False


def match_label(answer: str, labels: list[str]) -> str | None:
    """The label the answer names, else None: the label exactly as written first (so an exact answer
    always parses to itself, whatever its punctuation), then ignoring case (labels that differ only in
    case are refused by settings.check_labels), then the one label the answer wraps in markup. When
    markup could be read two ways (labels ``U.S`` and ``U.S.``, answer ``**U.S.**``) nothing is guessed."""
    stripped = answer.strip()
    if stripped in labels:
        return stripped
    lowered = stripped.lower()
    for label in labels:
        if label.lower() == lowered:
            return label
    wrapped = [label for label in labels if _wrapped_in_markup(lowered, label.lower())]
    return wrapped[0] if len(wrapped) == 1 else None


def first_json(output: str, pick: Callable[[Any], Any]) -> Any:
    """The first JSON object or list in ``output`` that ``pick`` accepts (returns not None for), as
    ``pick`` returns it; None when there is none. Models fence JSON in markdown or add a sentence
    around it, so every ``{`` and ``[`` is tried as a start."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", output):
        try:
            value, _ = decoder.raw_decode(output, match.start())
        except json.JSONDecodeError:
            continue
        picked = pick(value)
        if picked is not None:
            return picked
    return None
