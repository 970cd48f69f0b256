"""The teacher behind the endpoint: the pipeline's own teacher, prompt, engine and response cache.

A deferred text is labelled exactly as the pipeline labels an item: the same cleaning and
``dataset.max_chars`` cut, the same chat messages (``prompt_messages``, few-shot examples included),
the same requests and cache keys (a text the pipeline already annotated is a cache hit), one
engine call per self-consistency iteration and the same majority vote. Every answer the teacher
was asked for is appended to the feedback file, failed ones with a null label.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.channel import is_channel
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompt_files import example_pool_from, prompt_messages
from synthdistill.annotation.prompts import load_template
from synthdistill.annotation.teachers import Teacher, make_teacher
from synthdistill.data import CONTROL_CHARACTERS
from synthdistill.labels.feedback import feedback_record
from synthdistill.labels.vote import vote_one
from synthdistill.schema import SCHEMA_PATH
from synthdistill.settings import check_labels, prompt_settings, settings_iterations, teacher_settings
from synthdistill.tasks.base import ERROR
from synthdistill.tasks.names import CALIBRATION_SPLIT, CONTENT_FREE_TEXT, PILOT_PROMPT

log = logging.getLogger(__name__)

SERVE_SPLIT = "serve"
# Where prepare_data writes the few-shot pool of prompts whose examples come from the data (rules/data.smk).
SHOTS_SPLIT_FILE = "results/data/shots.parquet"
PILOT_CHOICE_FILE = "results/pilot/{teacher}/choice.json"


def served_prompt(config: dict[str, Any], teacher: str, prompt: str) -> dict[str, Any]:
    """The settings of the prompt deferred texts are sent with: the config's, or with pilot.enabled and
    ``--prompt pilot`` the candidate the teacher's pilot chose (rules/pilot.smk)."""
    if prompt == PILOT_PROMPT and (config.get("pilot") or {}).get("enabled"):
        path = Path(PILOT_CHOICE_FILE.format(teacher=teacher))
        if not path.exists():
            raise SynthDistillError(
                f"--prompt {prompt}: the pilot's choice {path} does not exist (run synthdistill-serve from the "
                "workflow folder, after the pipeline)"
            )
        return json.loads(path.read_text())["settings"]
    if prompt not in config["prompts"]:
        raise SynthDistillError(f"--prompt {prompt}: not in prompts of the config ({list(config['prompts'])})")
    return prompt_settings(config, prompt)


def load_config(paths: list[str | Path]) -> dict[str, Any]:
    """The pipeline's config as Snakemake sees it: files merged in order, validated, defaults filled."""
    from snakemake.utils import update_config, validate

    config: dict[str, Any] = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise SynthDistillError(f"--configfile {path}: no such file")
        update_config(config, yaml.safe_load(path.read_text()) or {})
    try:
        validate(config, str(SCHEMA_PATH))
    except Exception as exc:  # snakemake's WorkflowError carries the schema message
        raise SynthDistillError(f"config {', '.join(map(str, paths))}: {exc}") from None
    # Not check_config: the dataset need not be on the serving machine, only labels, teacher and prompt.
    check_labels(config["labels"])
    return config


def clean_text(text: str, max_chars: int | None) -> str:
    """What prepare_data does to a text: control characters removed, stripped, cut to max_chars."""
    text = CONTROL_CHARACTERS.sub("", text).strip()
    return text[:max_chars] if max_chars else text


@dataclass
class TeacherAnswer:
    label: str | None
    vote_shares: dict[str, float]
    error: str | None  # why there is no label (request error, unparseable answer, tie), else None
    unanswered: bool = False  # every request for it failed: the teacher never answered (the breaker counts these)


class TeacherDeferral:
    """Labels deferred texts with one teacher × prompt of a pipeline config; appends the feedback file."""

    def __init__(
        self,
        config: dict[str, Any],
        teacher: str,
        prompt: str,
        student: str,
        feedback_path: str | Path,
        teacher_backend: Teacher | None = None,
    ) -> None:
        if teacher not in config["teachers"]:
            raise SynthDistillError(f"--teacher {teacher}: not in teachers of the config ({list(config['teachers'])})")
        self.teacher_name, self.prompt_name, self.student = teacher, prompt, student
        self.labels: list[str] = list(config["labels"])
        settings = teacher_settings(config, teacher)
        if settings["backend"] in ("openai_batch", "anthropic_batch"):
            raise SynthDistillError(
                f"--teacher {teacher}: a provider batch API answers within hours, not while a client waits; "
                "serve with a real-time teacher (openai, hf_inference, llama_cpp, transformers)"
            )
        self.prompt = served_prompt(config, teacher, prompt)
        self.generation = {**settings, **self.prompt}
        self.template = load_template(self.prompt["template"], per_label=is_channel(self.prompt))
        self.pool = self._example_pool()
        self.teacher = teacher_backend or make_teacher(settings, teacher)
        self.cache_path = config["cache"]["path"]
        ResponseCache(self.cache_path).db.close()  # a bad cache path fails at start, not on the first deferral
        self._cache: ResponseCache | None = None  # opened on the worker thread (SQLite connections stay on theirs)
        self.iterations = settings_iterations(self.prompt, config)
        self.tie_policy = config["vote"]["tie_policy"]
        self.max_chars = config["dataset"].get("max_chars")
        self.retry_unparsed = bool(config["annotate"]["retry_unparsed"])
        # A provider batch teacher is refused above; passed on all the same, as the annotate rule does.
        self.batch_missing = config["annotate"]["batch_missing"]
        self.max_failure_share = 1.0  # a failed text falls back to the student; it never fails the batch
        self.feedback_path = Path(feedback_path)
        self.feedback_path.parent.mkdir(parents=True, exist_ok=True)
        self._feedback_lock = threading.Lock()

    def _example_pool(self) -> pd.DataFrame | None:
        """The prompt's few-shot examples, from the same file build_prompts reads them from."""
        examples = self.prompt.get("examples")
        if not examples:
            return None
        path = Path(examples["path"]) if examples.get("path") else Path(SHOTS_SPLIT_FILE)
        if not path.exists():
            raise SynthDistillError(
                f"--prompt {self.prompt_name}: its few-shot examples are read from {path}, which does not exist "
                "(run synthdistill-serve from the workflow folder, after the pipeline)"
            )
        return example_pool_from([str(path)], self.prompt, self.labels)

    def describe(self) -> dict[str, Any]:
        return {
            "teacher": self.teacher_name,
            "prompt": self.prompt_name,
            "iterations": self.iterations,
            "feedback": str(self.feedback_path),
        }

    def _prompts(self, texts: list[str]) -> pd.DataFrame:
        calibrate = self.prompt["kind"] == "label_scores" and self.prompt.get("calibrate")
        shown = texts + [CONTENT_FREE_TEXT] if calibrate else texts
        messages, _ = prompt_messages(shown, self.template, self.prompt, self.labels, self.pool)
        return pd.DataFrame(
            {
                "id": [f"serve-{i}" for i in range(len(texts))] + (["__content_free__"] if calibrate else []),
                "split": [SERVE_SPLIT] * len(texts) + ([CALIBRATION_SPLIT] if calibrate else []),
                "messages": [json.dumps(m, ensure_ascii=False) for m in messages],
            }
        )

    def label(self, texts: list[str]) -> list[TeacherAnswer]:
        """The teacher's voted label for each (already cleaned) text. Always called from the one
        teacher worker thread (an in-process model is not shared between threads)."""
        if self._cache is None:
            self._cache = ResponseCache(self.cache_path)
        prompts = self._prompts(texts)
        per_iteration = []
        for iteration in range(self.iterations):
            frame = annotate(
                prompts,
                self.teacher,
                self._cache,
                kind=self.prompt["kind"],
                labels=self.labels,
                generation=self.generation,
                iteration=iteration,
                max_failure_share=self.max_failure_share,
                retry_unparsed=self.retry_unparsed,
                max_consecutive_failures=None,
                batch_missing=self.batch_missing,
            )
            per_iteration.append(frame)
        answers = []
        for i in range(len(texts)):
            votes = [None if pd.isna(f["label"].iat[i]) else str(f["label"].iat[i]) for f in per_iteration]
            label, status, _ = vote_one(votes, self.labels, self.tie_policy)
            shares = {name: votes.count(name) / len(votes) for name in self.labels}
            error = None
            if label is None:
                errors = [f["error"].iat[i] for f in per_iteration if isinstance(f["error"].iat[i], str)]
                statuses = sorted({str(f["parse_status"].iat[i]) for f in per_iteration})
                error = errors[0] if errors else f"no label ({status}; answers: {', '.join(statuses)})"
            unanswered = all(f["parse_status"].iat[i] == ERROR for f in per_iteration)
            answers.append(TeacherAnswer(label, shares, error, unanswered))
        return answers

    def record(self, texts: list[str], answers: list[TeacherAnswer], student_labels: list[str], confidences) -> None:
        """Append one feedback line per deferred text the teacher was asked about."""
        lines = [
            json.dumps(
                feedback_record(
                    text,
                    answer.label,
                    teacher=self.teacher_name,
                    prompt=self.prompt_name,
                    student=self.student,
                    student_label=student_label,
                    confidence=float(confidence),
                ),
                ensure_ascii=False,
            )
            for text, answer, student_label, confidence in zip(texts, answers, student_labels, confidences, strict=True)
        ]
        with self._feedback_lock, self.feedback_path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
