"""Task kinds, one module each, registered by name (the ``task`` key of config):

- ``single_label`` (tasks/single_label.py): one label per text, the default;
- ``multi_label`` (tasks/multi_label.py): any subset of the labels per text;
- ``spans`` (tasks/spans.py): labelled character spans per text.

Every artifact keeps one string ``label`` column per item whatever the task (a JSON document for the
two structured kinds), so the data, prompt, annotation, cache and shard stages are the same code for
every task; each stage after the vote is one rule whose script calls the task's step (tasks/base.py).
"""

from __future__ import annotations

from typing import Any

from synthdistill import SynthDistillError
from synthdistill.tasks import multi_label, single_label, spans
from synthdistill.tasks.base import Task

REGISTRY: dict[str, Task] = {task.name: task for task in (single_label.TASK, multi_label.TASK, spans.TASK)}

SINGLE_LABEL = single_label.TASK.name
MULTI_LABEL = multi_label.TASK.name
SPANS = spans.TASK.name
TASKS = tuple(REGISTRY)

# The prompt kinds (parsers) each task takes.
PROMPT_KINDS = {name: task.prompt_kinds for name, task in REGISTRY.items()}


def task_of(config: dict[str, Any]) -> str:
    return config.get("task") or SINGLE_LABEL


def get_task(name: str) -> Task:
    if name not in REGISTRY:
        raise SynthDistillError(f"task: {name!r} is not one of {list(REGISTRY)}")
    return REGISTRY[name]


def _keys_by_feature(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(config key, the feature it needs) for every key set to something only some kinds use."""
    used = []
    if config.get("ensembles"):
        used.append(("ensembles", "ensembles"))
    if (config.get("cascade") or {}).get("feedback"):
        used.append(("cascade.feedback", "cascade"))
    split = config.get("split") or {}
    if split.get("gold_dev_size"):
        used.append(("split.gold_dev_size", "gold_dev"))
    if config.get("students_learn_from", "all") != "all":
        used.append(("students_learn_from", "gold_dev"))
    if split.get("shots_per_label"):
        used.append(("split.shots_per_label", "few_shot"))
    for name, prompt in (config.get("prompts") or {}).items():
        if prompt.get("examples"):
            used.append((f"prompts.{name}.examples", "few_shot"))
    if (config.get("annotate") or {}).get("strategy", "all") != "all":
        used.append(("annotate.strategy", "active"))
    if (config.get("pilot") or {}).get("enabled"):
        used.append(("pilot.enabled", "pilot"))
    dataset = config.get("dataset") or {}
    if dataset.get("label_names"):
        used.append(("dataset.label_names", "label_names"))
    for key in ("tokens_column", "tags_column"):
        if dataset.get(key):
            used.append((f"dataset.{key}", "bio_tags"))
    for name, student in (config.get("students") or {}).items():
        if student.get("targets", "hard") != "hard":
            used.append((f"students.{name}.targets", "soft_targets"))
    return used


def check_task(config: dict[str, Any]) -> str:
    """Stop when a setting belongs to another task kind, naming the key; return the task."""
    task = get_task(task_of(config))
    for name, prompt in (config.get("prompts") or {}).items():
        if prompt["kind"] not in task.prompt_kinds:
            other = " or ".join(t for t, kinds in PROMPT_KINDS.items() if prompt["kind"] in kinds)
            raise SynthDistillError(
                f"prompts.{name}.kind: {prompt['kind']!r} is a {other} prompt; task {task.name} takes "
                f"{' or '.join(task.prompt_kinds)}. (A --configfile is merged into config/config.yaml and keeps "
                "its prompts; add --replace-workflow-config to run a config file on its own.)"
            )
    unsupported = [key for key, feature in _keys_by_feature(config) if not task.supports(feature)]
    if unsupported:
        takers = {
            key: [t.name for t in REGISTRY.values() if t.supports(feature)]
            for key, feature in _keys_by_feature(config)
            if key in unsupported
        }
        first = unsupported[0]
        raise SynthDistillError(
            f"{', '.join(unsupported)}: only task {' or '.join(takers[first])} takes this; task is {task.name}"
        )
    return task.name
