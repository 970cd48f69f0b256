"""The annotation engine: prompts in, one row per item out, every answer cached as it arrives.

The requests are built in :mod:`synthdistill.annotation.requests`, sent and stored in
:mod:`synthdistill.annotation.runner`; label scores become labels in :mod:`synthdistill.annotation.label_scores`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache, cache_key
from synthdistill.annotation.channel import CHANNEL_BACKENDS, channel_completion, is_channel
from synthdistill.annotation.label_scores import content_free_prior, scored_answer
from synthdistill.annotation.parsing import parse
from synthdistill.annotation.prompts import PER_LABEL_DEFAULTS, answer_aliases
from synthdistill.annotation.requests import item_requests
from synthdistill.annotation.runner import Outcome, collect_answers
from synthdistill.annotation.teachers.base import Completion, Request, Teacher
from synthdistill.annotation.teachers.chat_api import first_token_problem
from synthdistill.tasks.base import EMPTY, ERROR, INVALID_JSON, NOT_A_LABEL, OK
from synthdistill.tasks.names import CALIBRATION_SPLIT

log = logging.getLogger(__name__)

ANNOTATION_COLUMNS = [
    "id",
    "split",
    "raw_output",
    "label",
    "reason",
    "parse_status",
    "error",
    "latency_s",
    "compute_s",
    "input_tokens",
    "output_tokens",
    "cached",
]
UNPARSED = (EMPTY, NOT_A_LABEL, INVALID_JSON)
# An item's answers (None when any of its requests failed) and its outcome.
ItemResult = tuple[list[Completion] | None, Outcome]


def _sum_or_none(values: list[Any]) -> Any:
    return None if any(v is None for v in values) else sum(values)


def item_outcome(outcomes: list[Outcome], labels: list[str]) -> tuple[list[Completion] | None, Outcome]:
    """One item's answers (None when any of its requests failed: a per-label item is scored whole or
    not at all) and its outcome: latencies, compute shares and token counts summed over its requests,
    cached when all were, the first error (named by label for a per-label item)."""
    completions = [o[0] for o in outcomes]
    latency, compute = _sum_or_none([o[1] for o in outcomes]), _sum_or_none([o[2] for o in outcomes])
    cached = all(o[4] for o in outcomes)
    failed = [(j, o[3]) for j, o in enumerate(outcomes) if o[0] is None]
    if failed:
        j, error = failed[0]
        if len(outcomes) > 1:
            error = f"label {labels[j]!r}: {error} ({len(failed)} of {len(outcomes)} label requests failed)"
        return None, (None, latency, compute, error, cached)
    return [c for c in completions if c is not None], (completions[0], latency, compute, None, cached)


def annotate(
    prompts: pd.DataFrame,
    teacher: Teacher,
    cache: ResponseCache,
    *,
    kind: str,
    labels: list[str],
    generation: dict[str, Any],
    iteration: int,
    max_failure_share: float,
    retry_unparsed: bool,
    max_consecutive_failures: int | None,
    batch_missing: str | None,
) -> pd.DataFrame:
    """Label every prompt once (one self-consistency iteration).

    Cached answers are reused; new ones are stored as soon as they arrive, so a killed job
    resumes with only the missing requests. A request that fails is recorded with its error, an
    answer that does not parse with its status (it is cached all the same: it was paid for). If more
    than ``max_failure_share`` of the items got no label either way, the job stops after storing all
    the answers. ``retry_unparsed`` asks again for exactly the items whose cached answer does not
    parse and replaces their entries (a deterministic server may well answer the same again). After
    ``max_consecutive_failures`` identical request failures in a row (None: never) the job stops
    sending and fails, quoting the error. ``batch_missing`` (``fail`` or ``resubmit``, None: the schema's
    default) is what a provider batch teacher does with a recorded batch the provider answers 404 for.
    For ``label_scores`` prompts a row with split ``calibration`` (the content-free input) gives
    the prior that contextual calibration divides by; it is not part of the output.
    """
    scoring = getattr(teacher, "label_scoring", None)
    if is_channel(generation) and scoring != "sequence":
        raise SynthDistillError(
            f"teacher {teacher.identity.get('backend')} {teacher.identity.get('model')}: direction: channel scores "
            f"the text's own tokens, which only in-process teachers ({', '.join(CHANNEL_BACKENDS)}) give"
        )
    # A teacher that can tell, before any request, that it cannot read this prompt (llama_cpp: a GGUF
    # without a chat template, given a chat prompt) says so here rather than in every request's failure.
    check_prompt = getattr(teacher, "check_prompt", None)
    if check_prompt is not None:
        check_prompt(kind, generation)
    per_label = bool(generation.get("per_label"))
    answers = answer_aliases(labels, generation.get("aliases"))
    if kind == "label_scores" and scoring is None and not per_label:
        _check_first_tokens(teacher, answers)
    per_item = [item_requests(m, kind, labels, generation, iteration, scoring) for m in prompts["messages"]]
    requests = [r for group in per_item for r in group]
    keys = [cache_key(teacher.identity, r.as_dict(), iteration) for r in requests]
    reask = None
    if retry_unparsed and kind != "label_scores":  # label scores always parse
        reask = _unparsed_answers(prompts, per_item, kind, labels)
    flat = collect_answers(
        requests,
        keys,
        teacher,
        cache,
        reask=reask,
        max_consecutive_failures=max_consecutive_failures,
        batch_missing=batch_missing,
    )
    results = _item_results(flat, per_item, labels, generation)

    is_calibration = (prompts["split"] == CALIBRATION_SPLIT).to_numpy()
    prior = None
    if kind == "label_scores" and is_calibration.any():
        calibration = results[int(np.flatnonzero(is_calibration)[0])]
        prior = _calibration_prior(calibration, flat, cache.path, labels, answers, per_label)
    threshold = float(generation.get("threshold", PER_LABEL_DEFAULTS["threshold"]))

    def score(completions: list[Completion]) -> dict[str, Any]:
        return scored_answer(completions, labels, prior, answers, per_label, threshold)

    rows = [
        _item_row(item, result, kind, labels, score)
        for result, item, calibration in zip(results, prompts.to_dict("records"), is_calibration, strict=True)
        if not calibration
    ]
    frame = _annotation_frame(rows, kind, labels)
    check_failures(frame, max_failure_share, cache.path, retry_unparsed)
    return frame


def _check_first_tokens(teacher: Teacher, answers: list[str]) -> None:
    """Refuse, before anything is sent, answers that a teacher scoring the first answer token cannot
    tell apart. settings.check_config refuses this before the workflow runs; the engine also runs outside it."""
    problem = first_token_problem(answers)
    if problem:
        raise SynthDistillError(
            f"teacher {teacher.identity.get('backend')} {teacher.identity.get('model')} scores labels by the "
            f"first answer token: {problem}, so its scores cannot tell them apart (nothing was sent). Use "
            "aliases: letters, rename the labels, or use a label or cot_json prompt"
        )


def _unparsed_answers(
    prompts: pd.DataFrame, per_item: list[list[Request]], kind: str, labels: list[str]
) -> Callable[[int, Completion], bool]:
    """Whether the cached answer to request ``index`` does not parse (annotate.retry_unparsed)."""
    owner = [i for i, group in enumerate(per_item) for _ in group]
    # A prompts frame without texts (one built by hand) still parses every kind but spans_json.
    texts = prompts["text"].tolist() if "text" in prompts else [None] * len(prompts)

    def reask(index: int, completion: Completion) -> bool:
        return parse(kind, completion.text, labels, texts[owner[index]]).status != OK

    return reask


def _item_results(
    flat: list[Outcome], per_item: list[list[Request]], labels: list[str], generation: dict[str, Any]
) -> list[ItemResult]:
    """The request outcomes grouped back into one result per item."""
    bounds = np.cumsum([0] + [len(group) for group in per_item])
    results = [item_outcome(flat[start:stop], labels) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    if is_channel(generation):  # one label_scores answer per item, from its per-label requests
        results = [([channel_completion(c, labels)] if c is not None else None, o) for c, o in results]
    return results


def _calibration_prior(
    calibration: ItemResult,
    flat: list[Outcome],
    cache_path: Any,
    labels: list[str],
    answers: list[str],
    per_label: bool,
) -> np.ndarray:
    """The prior that contextual calibration divides by, from the content-free item's answers."""
    completions, (_, _, _, error, _) = calibration
    if completions is None:
        failed = sum(1 for outcome in flat if outcome[0] is None)
        raise SynthDistillError(
            f"the content-free calibration request (the prior that calibrate: true divides by) failed: {error}. "
            f"{failed} of {len(flat)} requests of this job failed; the answers received are in the cache "
            f"{cache_path}. Fix the cause, then rerun (cached answers are not requested again)"
        )
    prior = content_free_prior(completions, labels, answers, per_label)
    shown = prior[:, 0] if per_label else prior
    log.info(
        "calibration prior %s%s",
        dict(zip(labels, shown.round(3).tolist(), strict=True)),
        " (P(yes) per label)" if per_label else "",
    )
    return prior


def _item_row(
    item: dict[str, Any],
    result: ItemResult,
    kind: str,
    labels: list[str],
    score: Callable[[list[Completion]], dict[str, Any]],
) -> dict[str, Any]:
    """One item's annotation row; ``score`` gives a label_scores item's label and probabilities."""
    completions, (_, latency, compute, error, cached) = result
    row = {
        "id": item["id"],
        "split": item["split"],
        "error": error,
        "latency_s": latency,
        "compute_s": compute,
        "cached": cached,
    }
    if completions is None:
        row.update(raw_output=None, label=None, reason=None, parse_status=ERROR)
    elif kind == "label_scores":
        row.update(score(completions))
    else:
        parsed = parse(kind, completions[0].text, labels, item.get("text"))
        row.update(raw_output=completions[0].text, label=parsed.label, reason=parsed.reason, parse_status=parsed.status)
    # A per-label item's tokens: those of all its requests, as they are billed.
    row["input_tokens"] = _sum_or_none([c.input_tokens for c in completions]) if completions else None
    row["output_tokens"] = _sum_or_none([c.output_tokens for c in completions]) if completions else None
    return row


def _annotation_frame(rows: list[dict[str, Any]], kind: str, labels: list[str]) -> pd.DataFrame:
    prob_columns = [f"prob_{label}" for label in labels] if kind == "label_scores" else []
    frame = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS + prob_columns)
    for column in ("input_tokens", "output_tokens"):
        frame[column] = frame[column].astype("Int64")
    return frame


def check_failures(frame: pd.DataFrame, max_failure_share: float, cache_path: Any, retry_unparsed: bool) -> None:
    """Fail the job when more than ``max_failure_share`` of the items got no label: failed requests
    and answers that do not parse alike."""
    status = frame["parse_status"]
    request_errors = int((status == ERROR).sum())
    unparsed = status.isin(UNPARSED)
    failed = request_errors + int(unparsed.sum())
    if failed <= max_failure_share * len(frame):
        return
    summary = (
        f"{failed} of {len(frame)} requests failed (more than max_failure_share={max_failure_share}): "
        f"{request_errors} request errors and {int(unparsed.sum())} unparseable answers"
    )
    if unparsed.any():
        counts = status[unparsed].value_counts()
        summary += " (" + ", ".join(f"{n} {name}" for name, n in counts.items()) + ")"
    sentences = [f"{summary}; the {len(frame) - request_errors} answers received are in the cache {cache_path}"]
    if request_errors:
        sentences.append(f"First error: {frame.loc[status == ERROR, 'error'].iloc[0]}")
    if unparsed.any():
        example = frame.loc[unparsed].iloc[0]
        sentences.append(f"Example unparseable answer ({example['parse_status']}): {example['raw_output']!r:.300}")
        if not retry_unparsed:
            sentences.append(
                "A rerun reuses the cached unparseable answers; set annotate.retry_unparsed: true to ask again "
                "for exactly those items (a server at temperature 0 may answer the same)"
            )
    raise SynthDistillError(". ".join(sentences) + ".")
