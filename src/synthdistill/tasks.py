"""Task kinds: what one text's answer is, and which settings each kind takes.

- ``single_label``: one label per text (the default and the whole pipeline);
- ``multi_label``: any subset of the labels per text, stored as a JSON list in label order
  (``["billing", "bug"]``; ``[]`` is a valid answer);
- ``spans``: labelled character spans per text, stored as a JSON list of
  ``{"start", "end", "label"}`` sorted by position.

Every artifact keeps one string ``label`` column per item whatever the task (a JSON document for the
two structured kinds), so the data, prompt, annotation, cache and shard stages are the same code for
every task; the stages after the vote are the task's own (``rules/<task>.smk``).
"""

from __future__ import annotations

from typing import Any

from synthdistill.errors import SynthDistillError

SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
SPANS = "spans"
TASKS = (SINGLE_LABEL, MULTI_LABEL, SPANS)

# The prompt kinds (parsers) each task takes.
PROMPT_KINDS = {
    SINGLE_LABEL: ("label", "cot_json", "label_scores"),
    # multi_label label_scores: one yes/no question per label (settings.is_per_label).
    MULTI_LABEL: ("labels_json", "label_scores"),
    SPANS: ("spans_json",),
}


def task_of(config: dict[str, Any]) -> str:
    return config.get("task") or SINGLE_LABEL


def _single_label_only(config: dict[str, Any]) -> list[str]:
    """The config keys set to something only single_label runs use."""
    used = []
    if config.get("ensembles"):
        used.append("ensembles")
    if (config.get("cascade") or {}).get("feedback"):
        used.append("cascade.feedback")
    if (config.get("split") or {}).get("gold_dev_size"):
        used.append("split.gold_dev_size")
    if config.get("students_learn_from", "all") != "all":
        used.append("students_learn_from")
    if (config.get("split") or {}).get("shots_per_label"):
        used.append("split.shots_per_label")
    for name, prompt in (config.get("prompts") or {}).items():
        if prompt.get("examples"):
            used.append(f"prompts.{name}.examples")
    if (config.get("dataset") or {}).get("label_names"):
        used.append("dataset.label_names")
    for name, student in (config.get("students") or {}).items():
        if student.get("targets", "hard") != "hard":
            used.append(f"students.{name}.targets")
    return used


def check_task(config: dict[str, Any]) -> str:
    """Stop when a setting belongs to another task kind, naming the key; return the task."""
    task = task_of(config)
    if task not in TASKS:
        raise SynthDistillError(f"task: {task!r} is not one of {list(TASKS)}")
    for name, prompt in (config.get("prompts") or {}).items():
        if prompt["kind"] not in PROMPT_KINDS[task]:
            other = " or ".join(t for t, kinds in PROMPT_KINDS.items() if prompt["kind"] in kinds)
            raise SynthDistillError(
                f"prompts.{name}.kind: {prompt['kind']!r} is a {other} prompt; task {task} takes "
                f"{' or '.join(PROMPT_KINDS[task])}. (A --configfile is merged into config/config.yaml and keeps "
                "its prompts; add --replace-workflow-config to run a config file on its own.)"
            )
    dataset = config.get("dataset") or {}
    if task != SPANS:
        for key in ("tokens_column", "tags_column"):
            if dataset.get(key):
                raise SynthDistillError(f"dataset.{key}: the tokens + BIO tags form is for task spans, not {task}")
    if task != SINGLE_LABEL:
        used = _single_label_only(config)
        if used:
            raise SynthDistillError(f"{', '.join(used)}: only task single_label takes this; task is {task}")
    return task
