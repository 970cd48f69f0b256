"""Checks and defaults for the parts of the config that JSON schema cannot express.

They run when Snakemake parses the workflow, so a bad config stops before any job, let alone
any LLM call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.channel import CHANNEL_BACKENDS, check_channel_template, is_channel
from synthdistill.annotation.prompts import PER_LABEL_DEFAULTS, load_template
from synthdistill.schema import defaults, with_defaults
from synthdistill.tasks import MULTI_LABEL, check_task, task_of
from synthdistill.tasks.names import BEST, EXPERT, PILOT_PROMPT

PROMPT_DEFAULTS = {
    "label": {"max_tokens": 8, "structured": False, "system": None},
    "cot_json": {"max_tokens": 160, "structured": False, "system": None},
    "label_scores": {"max_tokens": 1, "structured": False, "system": None, "calibrate": False, "aliases": None},
    "labels_json": {"max_tokens": 48, "structured": False, "system": None},
    "spans_json": {"max_tokens": 256, "structured": False, "system": None},
}
# Settings that do not change a teacher's answers: kept out of the annotate params so that
# editing them reruns nothing.
NON_GENERATION_KEYS = ("price", "self_hosted", "hardware", "energy_wh_per_1k_tokens")


def prompt_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    settings = {**PROMPT_DEFAULTS[config["prompts"][name]["kind"]], **config["prompts"][name]}
    if is_per_label(config, name):
        settings = {**PER_LABEL_DEFAULTS, **settings, "per_label": True}
    return settings


def is_per_label(config: dict[str, Any], name: str) -> bool:
    """Whether a prompt asks about one label at a time: a label_scores prompt of task multi_label."""
    return config["prompts"][name]["kind"] == "label_scores" and task_of(config) == MULTI_LABEL


def asks_per_label(config: dict[str, Any], name: str) -> bool:
    """Whether a prompt's template is filled with one label at a time (``{label}``): a per-label
    prompt, or a channel prompt, which scores the text after each label."""
    return is_per_label(config, name) or is_channel(config["prompts"][name])


def settings_iterations(prompt: dict[str, Any], config: dict[str, Any]) -> int:
    """How many self-consistency iterations prompt settings are annotated with: label_scores answers
    are forward-pass scores, the same on every iteration, so one iteration is asked and paid for."""
    if prompt["kind"] == "label_scores":
        return 1
    return int(config["self_consistency"]["iterations"])


def pilot_candidates(config: dict[str, Any], teacher: str) -> dict[str, dict[str, Any]]:
    """The pilot's candidates for one teacher (labels.pilot.candidates), each with its kind's defaults."""
    from synthdistill.labels.pilot import candidates

    backend = config["teachers"][teacher]["backend"]
    found = candidates(
        {name: config["prompts"][name] for name in _selection(config, "prompts")},
        config["pilot"],
        has_shots=bool(config["split"].get("shots_per_label")),
        channel_backend=backend in CHANNEL_BACKENDS,
    )
    if backend == "anthropic_batch":  # no log-probabilities, no constrained decoding (check_config)
        found = {n: c for n, c in found.items() if c["kind"] != "label_scores" and not c.get("structured")}
    return {name: {**PROMPT_DEFAULTS[c["kind"]], **c} for name, c in found.items()}


def check_pilot(config: dict[str, Any]) -> None:
    """pilot.enabled: what the pilot cannot work with stops the run before any call."""
    pilot = config.get("pilot") or {}
    if not pilot.get("enabled"):
        return
    if not (config.get("split") or {}).get("gold_dev_size"):
        raise SynthDistillError(
            "pilot.enabled: the pilot scores its candidates on expert labels that no student trains on; set "
            "split.gold_dev_size (100 texts give an F1 macro interval about 0.2 wide, docs/pilot.md)"
        )
    if (config.get("annotate") or {}).get("strategy", "all") != "all":
        raise SynthDistillError(
            "pilot.enabled with annotate.strategy active: not supported yet; choose one (set pilot.enabled: false "
            "or annotate.strategy: all)"
        )
    if config.get("ensembles"):
        raise SynthDistillError(
            "ensembles: with pilot.enabled each teacher labels the pool with its pilot's winner only (prompt "
            f"{PILOT_PROMPT!r}), so ensemble members naming the run's prompts have no labels; remove ensembles"
        )
    if PILOT_PROMPT in config["prompts"]:
        raise SynthDistillError(
            f"prompts.{PILOT_PROMPT}: with pilot.enabled this name is the pilot's winner; rename the prompt"
        )
    template = pilot.get("channel_template")
    if template and "channel" in pilot.get("kinds", ["channel"]):
        if not Path(template).exists():
            raise SynthDistillError(f"pilot.channel_template: file {template} does not exist")
        # The channel shape first: its message says what a channel template is.
        check_channel_template(Path(template).read_text(), f"pilot.channel_template {template}")
        load_template(template, per_label=True)


# The annotate section's keys that annotation.engine.annotate takes (shards and local are the workflow's).
ANNOTATE_ENGINE_KEYS = ("max_failure_share", "retry_unparsed", "max_consecutive_failures", "batch_missing")


def annotate_settings(section: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """annotation.engine.annotate's settings: a (validated) config's annotate section, the schema's defaults
    for what it leaves out, then ``overrides`` (None stands: max_consecutive_failures None never stops)."""
    settings = {**defaults("annotate"), **(section or {}), **overrides}
    return {key: settings[key] for key in ANNOTATE_ENGINE_KEYS}


def teacher_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    settings = {**defaults("teachers", "*"), **config["teachers"][name]}
    return {k: v for k, v in settings.items() if k not in NON_GENERATION_KEYS}


def _selection(config: dict[str, Any], key: str) -> list[str]:
    defined = list(config[key])
    chosen = config.get("run", {}).get(key) or defined
    for name in chosen:
        if name not in defined:
            raise SynthDistillError(f"run.{key}: unknown name {name!r}; {key} defined in config are {defined}")
    return chosen


# Backends whose label scores come from the first answer token's alternatives (top_logprobs).
FIRST_TOKEN_SCORERS = ("openai", "hf_inference", "openai_batch")


def check_labels(labels: list[str]) -> None:
    """Answers are matched case-insensitively, so labels that differ only in case are ambiguous. A label
    that ends with a line break passes the schema's pattern (Python's ``$`` matches before a final
    newline), but no answer could ever match it: refused here."""
    seen: dict[str, str] = {}
    for label in labels:
        if label != label.strip():
            raise SynthDistillError(f"labels: {label!r} begins or ends with a space or a line break; remove it")
        other = seen.setdefault(label.lower(), label)
        if other != label:
            raise SynthDistillError(
                f"labels: {other!r} and {label!r} differ only in case; answers are matched ignoring case, "
                "so the teacher's answer could not tell them apart. Rename one of them"
            )


def check_first_token_scores(labels: list[str], teacher: str, prompt: str) -> None:
    """First-token scores give a token to the one label it begins: labels whose first tokens cannot
    differ (``neg`` and ``negative``; ``very negative`` and ``very positive``) could never be told apart."""
    from synthdistill.annotation.teachers.chat_api import first_token_problem

    problem = first_token_problem(labels)
    if problem:
        raise SynthDistillError(
            f"teachers.{teacher} with prompts.{prompt} (label_scores): {problem}, so the first-token scores an "
            f"HTTP teacher returns cannot tell them apart. Set prompts.{prompt}.aliases: letters (the teacher "
            "answers A, B, C, ... listed in the prompt), rename the labels, or use a label or cot_json prompt "
            "with this teacher"
        )


def check_channel_prompt(config: dict[str, Any], name: str) -> None:
    """A channel prompt scores the text after each label: single_label label_scores, no aliases, and a
    template that ends with the text (checked before the generic template check, whose message is
    about per-label questions)."""
    prompt = config["prompts"][name]
    where = f"prompts.{name}.direction: channel"
    if prompt["kind"] != "label_scores" or is_per_label(config, name):
        raise SynthDistillError(f"{where} is for label_scores prompts of task single_label")
    if prompt.get("aliases"):
        raise SynthDistillError(f"{where} scores the text, not the labels' answers: aliases do not apply")
    if Path(prompt["template"]).exists():
        check_channel_template(Path(prompt["template"]).read_text(), f"prompts.{name}.template {prompt['template']}")


def check_prompt_options(config: dict[str, Any], name: str) -> None:
    """Few-shot examples and letter aliases: what the schema cannot check, down to the examples file's
    rows, so that a bad file stops the run before any job."""
    from synthdistill.annotation.examples import read_examples_file

    prompt = config["prompts"][name]
    template = Path(prompt["template"]).read_text()
    per_label = is_per_label(config, name)
    if prompt.get("threshold") is not None and not per_label:
        raise SynthDistillError(
            f"prompts.{name}.threshold: only label_scores prompts of task multi_label threshold each label's "
            "probability"
        )
    if prompt.get("aliases"):
        if per_label:
            raise SynthDistillError(
                f"prompts.{name}.aliases: a multi_label label_scores prompt scores the answers yes and no, not "
                "the labels"
            )
        if prompt["kind"] != "label_scores":
            raise SynthDistillError(f"prompts.{name}.aliases: only label_scores prompts answer with aliases")
        if "{labels}" not in template:
            raise SynthDistillError(
                f"prompts.{name}.aliases: the template {prompt['template']} has no {{labels}} placeholder, so the "
                "teacher would never see which letter stands for which label"
            )
    examples = prompt.get("examples")
    if not examples:
        if "{examples}" in template:
            raise SynthDistillError(
                f"prompts.{name}: the template {prompt['template']} has an {{examples}} placeholder but the prompt "
                "sets no examples"
            )
        return
    where = f"prompts.{name}.examples"
    if examples.get("path"):
        read_examples_file(examples["path"], config["labels"], where)
    elif examples["source"] == "file":
        raise SynthDistillError(f"{where}: source file needs path (a CSV or JSONL of text,label)")
    elif not config.get("split", {}).get("shots_per_label"):
        raise SynthDistillError(
            f"{where}: source nearest needs a pool: set split.shots_per_label (expert-labelled examples carved "
            "from the train pool) or examples.path"
        )
    elif not config.get("dataset", {}).get("label_column"):
        raise SynthDistillError(f"{where}: the shots split needs expert labels (dataset.label_column)")


def check_gold_dev(config: dict[str, Any]) -> None:
    """The gold dev split needs expert labels, and students_learn_from: best needs the gold dev split."""
    gold_dev = (config.get("split") or {}).get("gold_dev_size")
    if gold_dev and not config["dataset"].get("label_column"):
        raise SynthDistillError(
            "split.gold_dev_size: the gold dev split is expert-labelled, but dataset.label_column is not set"
        )
    if config.get("students_learn_from") == "best" and not gold_dev:
        raise SynthDistillError(
            "students_learn_from: best ranks the labellers on expert labels they never trained on; "
            "set split.gold_dev_size (e.g. 100) to carve that gold dev split from the train pool"
        )


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate cross-references and files; return what the workflow runs."""
    task = check_task(config)
    check_labels(config["labels"])
    dataset = config["dataset"]
    if dataset.get("path") and not Path(dataset["path"]).exists():
        raise SynthDistillError(f"dataset.path: file {dataset['path']} does not exist")
    check_gold_dev(config)
    prompts = _selection(config, "prompts")
    for name in prompts:
        if is_channel(config["prompts"][name]):
            check_channel_prompt(config, name)
        try:
            load_template(config["prompts"][name]["template"], per_label=asks_per_label(config, name))
        except SynthDistillError as exc:
            raise SynthDistillError(f"prompts.{name}.template: {exc}") from exc
        check_prompt_options(config, name)
    check_active(config)
    check_pilot(config)
    teachers = _selection(config, "teachers")
    for name in teachers:
        settings = config["teachers"][name]
        if settings["backend"] == "llama_cpp" and not (settings.get("model_path") or settings.get("repo_id")):
            raise SynthDistillError(f"teachers.{name}: a llama_cpp teacher needs model_path or repo_id + filename")
        if settings["backend"] in ("openai", "openai_batch", "anthropic_batch") and not settings.get("model"):
            raise SynthDistillError(
                f"teachers.{name}: an {settings['backend']} teacher needs model (and usually base_url)"
            )
        if settings["backend"] == "anthropic_batch":
            for prompt in prompts:
                if config["prompts"][prompt]["kind"] == "label_scores" or config["prompts"][prompt].get("structured"):
                    raise SynthDistillError(
                        f"teachers.{name} with prompts.{prompt}: Anthropic's API returns no log-probabilities and "
                        "this backend sends no constrained decoding, so label_scores and structured prompts do not "
                        "work with anthropic_batch; use a label or cot_json prompt with structured: false"
                    )
        channel = [prompt for prompt in prompts if is_channel(config["prompts"][prompt])]
        if channel and settings["backend"] not in CHANNEL_BACKENDS:
            raise SynthDistillError(
                f"teachers.{name} with prompts.{channel[0]}: direction: channel scores the text's own tokens, "
                f"which only in-process teachers ({', '.join(CHANNEL_BACKENDS)}) give; {settings['backend']} cannot. "
                "Use direction: direct with this teacher, or choose teachers and prompts with run.teachers, run.prompts"
            )
        if settings["backend"] in FIRST_TOKEN_SCORERS:
            for prompt in prompts:
                settings_of_prompt = config["prompts"][prompt]
                # A per-label prompt scores yes and no, whatever the labels.
                scores_labels = settings_of_prompt["kind"] == "label_scores" and not is_per_label(config, prompt)
                if scores_labels and not settings_of_prompt.get("aliases"):
                    check_first_token_scores(config["labels"], name, prompt)
    return {
        "task": task,
        "teachers": teachers,
        "prompts": prompts,
        "students": _selection(config, "students"),
        "iterations": config["self_consistency"]["iterations"],
        # tags_column: the expert spans of the tokens + BIO tags form (task spans).
        "has_expert_labels": bool(dataset.get("label_column") or dataset.get("tags_column")),
    }


def check_active(config: dict[str, Any]) -> None:
    """annotate.strategy active: settings the rounds cannot work with stop the run before any call."""
    if (config.get("annotate") or {}).get("strategy", "all") != "active":
        return
    active = config.get("active") or {}
    student = active.get("student")
    if student is not None and student not in config["students"]:
        raise SynthDistillError(
            f"active.student: {student!r} is not a student of this config; write one of {', '.join(config['students'])}"
        )
    if config.get("ensembles"):
        raise SynthDistillError(
            "ensembles: with annotate.strategy active each teacher × prompt labels the texts its own rounds "
            "chose, so an ensemble's members would not cover the same texts; remove ensembles or set "
            "annotate.strategy: all"
        )


def ensemble_settings(config: dict[str, Any], teachers: list[str], prompts: list[str]) -> dict[str, dict[str, Any]]:
    """name -> {members: [(teacher, prompt)], method}; members must be among the run's teachers and prompts."""
    out = {}
    for name, spec in (config.get("ensembles") or {}).items():
        if name in config["teachers"] or name in (EXPERT, BEST):
            raise SynthDistillError(f"ensembles.{name}: the name is already a teacher's (or '{EXPERT}' or '{BEST}')")
        members = []
        for number, member in enumerate(spec["members"], start=1):
            teacher, prompt = member
            if teacher not in teachers or prompt not in prompts:
                raise SynthDistillError(
                    f"ensembles.{name}.members[{number}]: {teacher}/{prompt} is not a teacher × prompt of this run "
                    f"(teachers {teachers}, prompts {prompts})"
                )
            members.append((teacher, prompt))
        if len(set(members)) < 2:
            raise SynthDistillError(f"ensembles.{name}.members: give at least two distinct teacher × prompt pairs")
        out[name] = {"members": members, "method": with_defaults(spec, "ensembles", "*")["method"]}
    return out


def review_settings(config_review: dict[str, Any] | None) -> dict[str, Any]:
    """The review block with the schema's defaults; a configured corrections file must exist before any job runs."""
    settings = with_defaults(config_review, "review")
    if settings["corrections"] and not Path(settings["corrections"]).exists():
        raise SynthDistillError(f"review.corrections: file {settings['corrections']} does not exist")
    return settings
