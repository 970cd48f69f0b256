"""The annotation engine: prompts in, one row per item out, every answer cached as it arrives."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np
import pandas as pd

from synthdistill.annotation.cache import CacheWriteError, ResponseCache, cache_key
from synthdistill.annotation.channel import CHANNEL, CHANNEL_BACKENDS, channel_completion, is_channel
from synthdistill.annotation.parsed import EMPTY, ERROR, INVALID_JSON, NOT_A_LABEL, OK
from synthdistill.annotation.parsing import parse
from synthdistill.annotation.prompts import PER_LABEL_DEFAULTS, answer_aliases
from synthdistill.annotation.teachers.base import Completion, Request, Teacher
from synthdistill.annotation.teachers.chat_api import first_token_problem
from synthdistill.errors import SynthDistillError
from synthdistill.label_sets import label_set_json
from synthdistill.names import CALIBRATION_SPLIT
from synthdistill.schema import defaults

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


def output_schema(kind: str, labels: list[str], reason_max_chars: int = 120) -> dict[str, Any] | None:
    """The JSON schema an answer must follow when decoding is constrained (None: not JSON)."""
    if kind == "labels_json":
        from synthdistill.annotation.multi_label_parsing import labels_json_schema

        return labels_json_schema(labels)
    if kind == "spans_json":
        from synthdistill.annotation.span_parsing import spans_json_schema

        return spans_json_schema(labels)
    if kind != "cot_json":
        return None
    return {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "maxLength": reason_max_chars},
            "label": {"type": "string", "enum": labels},
        },
        "required": ["reason", "label"],
        "additionalProperties": False,
    }


def item_seed(seed: int, iteration: int, messages: list[dict[str, str]]) -> int:
    """A deterministic 31-bit seed for one item and iteration (servers accept 32-bit seeds)."""
    digest = hashlib.sha256(json.dumps([seed, iteration, messages], sort_keys=True).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def build_request(
    messages: list[dict[str, str]],
    kind: str,
    labels: list[str],
    generation: dict[str, Any],
    iteration: int,
    label_scoring: str | None = None,
) -> Request:
    """One request, seeded per item and per self-consistency iteration.

    One seed shared by every item of an iteration would draw the same random number for each
    of them, so an iteration's samples would lean the same way across all items.
    ``label_scoring`` is the teacher's way of scoring labels (``Teacher.label_scoring``), part of
    the request so that the cache key says how a label_scores answer was computed.
    """
    structured = generation.get("structured", False)
    seed = generation.get("seed")
    if kind == "label_scores":
        # Deterministic scores from forward passes: sampling settings and seeds do not apply. With
        # aliases the teacher scores the letters the prompt lists, and the request says so.
        return Request(
            messages=messages,
            max_tokens=1,
            temperature=0.0,
            top_p=1.0,
            seed=None,
            score_labels=answer_aliases(labels, generation.get("aliases")),
            label_scoring=label_scoring,
        )
    return Request(
        messages=messages,
        max_tokens=int(generation["max_tokens"]),
        temperature=float(generation["temperature"]),
        top_p=float(generation.get("top_p", 1.0)),
        seed=None if seed is None else item_seed(int(seed), iteration, messages),
        json_schema=output_schema(kind, labels) if structured else None,
        choices=list(labels) if structured and kind == "label" else None,
    )


# What a per-label prompt's teacher answers about each label (multi_label label_scores).
YES_NO = ["yes", "no"]


def item_requests(
    messages: str,
    kind: str,
    labels: list[str],
    generation: dict[str, Any],
    iteration: int,
    label_scoring: str | None = None,
) -> list[Request]:
    """The requests of one item (its prompts-file ``messages`` cell): one, or for a per-label prompt
    (``generation["per_label"]``) one yes/no scoring request per label, each cached like any request."""
    chats = json.loads(messages)
    if is_channel(generation) or generation.get("per_label"):
        what = "a channel prompt's" if is_channel(generation) else "a per-label prompt's"
        if not (isinstance(chats, list) and len(chats) == len(labels) and all(isinstance(c, list) for c in chats)):
            raise SynthDistillError(
                f"{what} messages cell must hold one chat per label ({len(labels)}); this prompts "
                "file was built for another prompt or label set: rebuild it (rule build_prompts)"
            )
    if is_channel(generation):
        # The text's log-probability after each label's context: no sampling, no answer tokens.
        return [
            Request(messages=chat, max_tokens=0, temperature=0.0, top_p=1.0, seed=None, label_scoring=CHANNEL)
            for chat in chats
        ]
    if generation.get("per_label"):
        yes_no = {**generation, "aliases": None}
        return [build_request(chat, kind, YES_NO, yes_no, iteration, label_scoring) for chat in chats]
    return [build_request(chats, kind, labels, generation, iteration, label_scoring)]


class Progress:
    """done/total, rate, failures and cache hits, logged at most every ``every_s`` seconds."""

    def __init__(self, total: int, every_s: float = 10.0) -> None:
        self.total, self.every_s = total, every_s
        self.done = self.failed = self.cached = 0
        self.start = self.last = time.monotonic()

    def update(self, failed: bool, cached: bool) -> None:
        self.done += 1
        self.failed += failed
        self.cached += cached
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            log.info(
                "annotated %d/%d (%.1f items/s), request failures %d, cache hits %d",
                self.done,
                self.total,
                rate,
                self.failed,
                self.cached,
            )


# completion, latency, compute share (see BusyClock), error, cached
Outcome = tuple[Completion | None, float | None, float | None, str | None, bool]


class BusyClock:
    """The teacher's busy time, shared out among the requests in flight.

    With several requests in flight their latencies overlap, so summing them overstates how long
    the teacher was busy (64 concurrent one-second requests keep a server busy for one second, not
    64). Every stretch of time during which k requests are in flight is split equally among those
    k; a request's share is the sum of its slices, and the shares of all requests add up to the
    wall time during which at least one was in flight. With one request at a time a share is its
    latency. The clock keeps the running integral of 1/k, so start and stop are O(1). The latency
    comes from the same two readings as the share, so a thread switch between separate readings
    never makes the two disagree.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last = time.perf_counter()
        self._integral = 0.0

    def _advance(self) -> float:
        now = time.perf_counter()
        if self._in_flight:
            self._integral += (now - self._last) / self._in_flight
        self._last = now
        return self._integral

    def start(self) -> tuple[float, float]:
        """Mark a request as sent; returns the token to pass to :meth:`stop`."""
        with self._lock:
            mark = (self._advance(), self._last)
            self._in_flight += 1
            return mark

    def stop(self, mark: tuple[float, float]) -> tuple[float, float]:
        """Mark the request started at ``mark`` as answered; returns its share of busy seconds and
        its latency."""
        with self._lock:
            share = self._advance() - mark[0]
            self._in_flight -= 1
            return share, self._last - mark[1]


def failure_kind(exc: BaseException) -> str:
    """What makes two failures "the same" for the circuit breaker: the HTTP status if there was one,
    else the exception type and message with every number stripped (ports, attempts, timings)."""
    status = getattr(exc, "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    return f"{type(exc).__name__}: {re.sub(r'[0-9]+(?:[.][0-9]+)?', '#', str(exc))}"


class CircuitBreaker:
    """Trips after ``limit`` consecutive request failures of the same kind; any answer resets it."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.kind: str | None = None
        self.run = 0

    def record(self, kind: str | None) -> bool:
        """Record one outcome (None for an answer); True when the run of identical failures reaches the limit."""
        if kind is None:
            self.kind, self.run = None, 0
            return False
        self.run = self.run + 1 if kind == self.kind else 1
        self.kind = kind
        return self.limit is not None and self.run >= self.limit


def _collect(
    requests: list[Request],
    keys: list[str],
    teacher: Teacher,
    cache: ResponseCache,
    *,
    reask: Callable[[int, Completion], bool] | None = None,
    max_consecutive_failures: int | None,
    batch_missing: str | None = None,
) -> list[Outcome]:
    """Answers for every request: from the cache, else from the teacher, stored as they arrive.

    A cached answer for which ``reask`` is true is requested again and its entry replaced. The job
    stops sending at once (queued requests are cancelled; those in flight finish) when the cache
    takes no more writes, after ``max_consecutive_failures`` identical request failures in a row,
    or on an interrupt.
    """
    results: list[Outcome] = [(None, None, None, None, False)] * len(requests)
    progress = Progress(len(requests))
    missing = []
    reasked = 0
    for index, key in enumerate(keys):
        hit = cache.get(key)
        if hit is not None and reask is not None and reask(index, hit[0]):
            reasked += 1
            hit = None
        if hit is None:
            missing.append(index)
        else:
            # The times stored when the answer was paid for: a cache hit costs the teacher nothing
            # now, but the label it carries cost that much once.
            results[index] = (hit[0], hit[1], hit[2], None, True)
            progress.update(failed=False, cached=True)
    if reasked:
        log.info("asking again for %d cached answers that did not parse (annotate.retry_unparsed)", reasked)

    if hasattr(teacher, "complete_many"):  # a provider batch API: every missing request at once
        return _collect_batched(missing, requests, keys, teacher, cache, results, progress, batch_missing)

    # Backends that generate several sequences per step (transformers) offer complete_batch.
    complete_batch = getattr(teacher, "complete_batch", None)
    batch_size = getattr(teacher, "batch_size", 1) if complete_batch is not None else 1
    concurrency = max(1, teacher.max_concurrency)
    stop = threading.Event()
    # A worker sends only while fewer than ``concurrency`` answers are sent but not yet handled (stored)
    # here, so when the job decides to stop, at most that many requests are out.
    slots = threading.Semaphore(concurrency)
    clock = BusyClock()

    CallOutcome = tuple[int, Completion | None, float, float, str | None, str | None]

    def call(indices: list[int]) -> list[CallOutcome] | None:
        slots.acquire()
        if stop.is_set():  # picked up between the decision to stop and the cancellation
            slots.release()
            return None
        mark = clock.start()
        try:
            if complete_batch is not None and batch_size > 1:
                completions = complete_batch([requests[i] for i in indices])
            else:
                completions = [teacher.complete(requests[indices[0]])]
        except Exception as exc:  # recorded per item; the share check in annotate() decides the job
            share, elapsed = clock.stop(mark)
            error, kind = f"{type(exc).__name__}: {exc}", failure_kind(exc)
            return [(i, None, elapsed, share / len(indices), error, kind) for i in indices]
        # A batch generated together shares its time equally among its prompts.
        share, elapsed = clock.stop(mark)
        share, latency = share / len(indices), elapsed / len(indices)
        outcomes: list[CallOutcome] = []
        for i, answer in zip(indices, completions, strict=True):
            if isinstance(answer, Exception):  # complete_batch may fail one request and answer the others
                outcomes.append((i, None, latency, share, f"{type(answer).__name__}: {answer}", failure_kind(answer)))
            else:
                outcomes.append((i, answer, latency, share, None, None))
        return outcomes

    chunks = [missing[i : i + batch_size] for i in range(0, len(missing), batch_size)]
    breaker = CircuitBreaker(max_consecutive_failures)
    tripped: str | None = None  # the error that tripped the breaker
    tripped_after = 0
    write_error: CacheWriteError | None = None
    stored = lost = processed = 0
    pool = ThreadPoolExecutor(max_workers=concurrency)
    futures = [pool.submit(call, chunk) for chunk in chunks]

    def halt() -> None:
        stop.set()
        for future in futures:
            future.cancel()
        slots.release(concurrency)  # wake the workers waiting for a slot: they see the stop and return

    try:
        for future in as_completed(futures):
            if future.cancelled() or (outcomes := future.result()) is None:
                continue
            for index, completion, latency, share, error, kind in outcomes:
                if completion is not None:
                    if write_error is not None:
                        lost += 1  # paid for, but the cache takes no more: nothing more is written
                        continue
                    try:
                        cache.put(keys[index], requests[index].as_dict(), completion, latency, compute_s=share)
                    except CacheWriteError as exc:
                        write_error, lost = exc, lost + 1
                        halt()
                        continue
                    stored += 1
                processed += 1
                results[index] = (completion, latency, share, error, False)
                progress.update(failed=error is not None, cached=False)
                if breaker.record(kind) and tripped is None:
                    tripped, tripped_after = error, breaker.run
                    halt()
            slots.release()
    except BaseException:  # Ctrl-C: send nothing more; the answers stored so far are kept
        halt()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

    not_sent = len(missing) - processed - lost
    if write_error is not None:
        raise SynthDistillError(
            f"{write_error} This run stored {stored} new answers before the error; {lost} answers received "
            f"could not be stored (they are lost) and {not_sent} requests were not sent."
        ) from None
    if tripped is not None:
        raise SynthDistillError(
            f"stopped after {tripped_after} consecutive requests failed the same way "
            f"(annotate.max_consecutive_failures={max_consecutive_failures}): {tripped}. "
            f"{not_sent} requests were not sent; the {stored} answers received in this run and all earlier ones "
            f"are in the cache {cache.path}. Fix the cause and rerun: cached answers are not requested again."
        )
    return results


def _collect_batched(
    missing: list[int],
    requests: list[Request],
    keys: list[str],
    teacher: Any,
    cache: ResponseCache,
    results: list[Outcome],
    progress: Progress,
    batch_missing: str | None = None,
) -> list[Outcome]:
    """Hand every missing request to a batch teacher (see :mod:`synthdistill.annotation.teachers.batch`),
    which stores each answer in the cache as its batch's results come in and records the batches it
    submits in the same file, so a killed run resumes them instead of submitting again."""
    if not missing:
        return results
    # annotate.batch_missing: what a recorded batch the provider no longer knows does (schema default: fail).
    policy = batch_missing or defaults("annotate")["batch_missing"]
    answers = teacher.complete_many([requests[i] for i in missing], [keys[i] for i in missing], cache, policy)
    for index in missing:
        completion, latency, error = answers[keys[index]]
        # A provider batch bills tokens, not time: its hours of queueing are no compute share.
        results[index] = (completion, latency, None, error, False)
        progress.update(failed=error is not None, cached=False)
    return results


def label_probabilities(
    completion: Completion, labels: list[str], prior: np.ndarray | None, answers: list[str] | None = None
) -> np.ndarray:
    """Normalised label probabilities, divided by the content-free prior when calibrating.
    ``answers`` are what the teacher scored for each label (its letter alias), when not the label."""
    logprobs = np.array([completion.extra["label_logprobs"][answer] for answer in answers or labels])
    probs = np.exp(logprobs - logprobs.max())
    if prior is not None:
        probs = probs / prior
    return probs / probs.sum()


def scored_probabilities(
    completions: list[Completion],
    labels: list[str],
    prior: np.ndarray | None,
    answers: list[str] | None = None,
    per_label: bool = False,
) -> np.ndarray:
    """Each label's probability from an item's label_scores answers: one distribution over the labels
    (one request), or per label P(yes) / (P(yes) + P(no)) from its own request (per-label prompts;
    independent, so a text can have none or all of the labels). ``prior``: the content-free
    answers' probabilities, one row of (yes, no) per label for a per-label prompt."""
    if not per_label:
        return label_probabilities(completions[0], labels, prior, answers)
    return np.array(
        [label_probabilities(c, YES_NO, None if prior is None else prior[j])[0] for j, c in enumerate(completions)]
    )


def content_free_prior(
    completions: list[Completion], labels: list[str], answers: list[str] | None = None, per_label: bool = False
) -> np.ndarray:
    """What contextual calibration divides by: the teacher's answer distribution for the content-free
    text (per label its yes/no distribution, for a per-label prompt)."""
    if per_label:
        return np.stack([label_probabilities(c, YES_NO, None) for c in completions])
    return label_probabilities(completions[0], labels, None, answers)


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


UNPARSED = (EMPTY, NOT_A_LABEL, INVALID_JSON)


def annotate(
    prompts: pd.DataFrame,
    teacher: Teacher,
    cache: ResponseCache,
    *,
    kind: str,
    labels: list[str],
    generation: dict[str, Any],
    iteration: int,
    max_failure_share: float = 0.1,
    retry_unparsed: bool = False,
    max_consecutive_failures: int | None,
    batch_missing: str | None = None,
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
    per_label = bool(generation.get("per_label"))
    answers = answer_aliases(labels, generation.get("aliases"))
    if kind == "label_scores" and scoring is None and not per_label:
        # settings.check_config refuses this before the workflow runs; the engine also runs outside it.
        problem = first_token_problem(answers)
        if problem:
            raise SynthDistillError(
                f"teacher {teacher.identity.get('backend')} {teacher.identity.get('model')} scores labels by the "
                f"first answer token: {problem}, so its scores cannot tell them apart (nothing was sent). Use "
                "aliases: letters, rename the labels, or use a label or cot_json prompt"
            )
    per_item = [item_requests(m, kind, labels, generation, iteration, scoring) for m in prompts["messages"]]
    requests = [r for group in per_item for r in group]
    owner = [i for i, group in enumerate(per_item) for _ in group]
    keys = [cache_key(teacher.identity, r.as_dict(), iteration) for r in requests]
    reask = None
    if retry_unparsed and kind != "label_scores":  # label scores always parse
        # A prompts frame without texts (one built by hand) still parses every kind but spans_json.
        texts = prompts["text"].tolist() if "text" in prompts else [None] * len(prompts)

        def reask(index: int, completion: Completion) -> bool:
            return parse(kind, completion.text, labels, texts[owner[index]]).status != OK

    flat = _collect(
        requests,
        keys,
        teacher,
        cache,
        reask=reask,
        max_consecutive_failures=max_consecutive_failures,
        batch_missing=batch_missing,
    )
    bounds = np.cumsum([0] + [len(group) for group in per_item])
    results = [item_outcome(flat[start:stop], labels) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    if is_channel(generation):  # one label_scores answer per item, from its per-label requests
        results = [([channel_completion(c, labels)] if c is not None else None, o) for c, o in results]

    is_calibration = (prompts["split"] == CALIBRATION_SPLIT).to_numpy()
    prior = None
    if kind == "label_scores" and is_calibration.any():
        completions, (_, _, _, error, _) = results[int(np.flatnonzero(is_calibration)[0])]
        if completions is None:
            failed = sum(1 for outcome in flat if outcome[0] is None)
            raise SynthDistillError(
                f"the content-free calibration request (the prior that calibrate: true divides by) failed: {error}. "
                f"{failed} of {len(flat)} requests of this job failed; the answers received are in the cache "
                f"{cache.path}. Fix the cause, then rerun (cached answers are not requested again)"
            )
        prior = content_free_prior(completions, labels, answers, per_label)
        shown = prior[:, 0] if per_label else prior
        log.info(
            "calibration prior %s%s",
            dict(zip(labels, shown.round(3).tolist(), strict=True)),
            " (P(yes) per label)" if per_label else "",
        )
    threshold = float(generation.get("threshold", PER_LABEL_DEFAULTS["threshold"]))

    rows = []
    for (completions, (_, latency, compute, error, cached)), item, calibration in zip(
        results, prompts.to_dict("records"), is_calibration, strict=True
    ):
        if calibration:
            continue
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
            probs = scored_probabilities(completions, labels, prior, answers, per_label)
            if per_label:
                raw = json.dumps({x: c.extra["label_logprobs"] for x, c in zip(labels, completions, strict=True)})
                label = label_set_json([x for x, p in zip(labels, probs, strict=True) if p >= threshold], labels)
            else:
                raw, label = json.dumps(completions[0].extra["label_logprobs"]), labels[int(probs.argmax())]
            row.update(raw_output=raw, label=label, reason=None, parse_status=OK)
            row.update({f"prob_{x}": float(p) for x, p in zip(labels, probs, strict=True)})
        else:
            parsed = parse(kind, completions[0].text, labels, item.get("text"))
            row.update(
                raw_output=completions[0].text, label=parsed.label, reason=parsed.reason, parse_status=parsed.status
            )
        # A per-label item's tokens: those of all its requests, as they are billed.
        row["input_tokens"] = _sum_or_none([c.input_tokens for c in completions]) if completions else None
        row["output_tokens"] = _sum_or_none([c.output_tokens for c in completions]) if completions else None
        rows.append(row)
    prob_columns = [f"prob_{label}" for label in labels] if kind == "label_scores" else []
    frame = pd.DataFrame(rows, columns=ANNOTATION_COLUMNS + prob_columns)
    for column in ("input_tokens", "output_tokens"):
        frame[column] = frame[column].astype("Int64")
    check_failures(frame, max_failure_share, cache.path, retry_unparsed)
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
