"""The classification service: the student answers, the teacher takes what the student is unsure of.

Every text goes through the student (micro-batched). With a cascade policy and a teacher, texts whose
confidence is under the threshold go to the teacher (batched too, on its own worker, so a slow
teacher never holds up the student's answers to other requests). A text the teacher cannot answer in
time (error, unparseable answer, outage, ``teacher_timeout_s``, or more than ``teacher_max_pending``
texts already waiting) gets the student's answer, marked ``student-fallback``: a teacher outage
degrades answers, it does not fail requests.

A multi_label student answers each text's label set (``labels``) with one probability per label, and
never defers: deferral is single-label only.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthdistill.schema import with_defaults
from synthdistill.serving.batcher import MicroBatcher
from synthdistill.serving.breaker import TeacherBreaker
from synthdistill.serving.deferral import TeacherAnswer, TeacherDeferral, clean_text
from synthdistill.serving.metrics import ServiceMetrics
from synthdistill.students.cascade_policy import CascadePolicy, confidence_of

log = logging.getLogger(__name__)

STUDENT, TEACHER, FALLBACK = "student", "teacher", "student-fallback"


@dataclass(frozen=True)
class ServeSettings:
    """The ``serve`` section of the config (defaults in the schema: :meth:`from_config`)."""

    max_batch_size: int
    inner_batch_size: int
    workers: int | None
    max_wait_ms: float
    max_texts_per_request: int
    max_text_chars: int
    max_body_bytes: int
    teacher_batch_size: int
    teacher_timeout_s: float
    teacher_max_pending: int
    teacher_breaker_failures: int
    teacher_breaker_cooldown_s: float
    shutdown_timeout_s: float

    @classmethod
    def from_config(cls, serve: dict[str, Any] | None, **overrides: Any) -> ServeSettings:
        values = with_defaults(serve, "serve")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})


class ClassifierService:
    def __init__(
        self,
        predictor: Any,
        settings: ServeSettings,
        student: str,
        policy: CascadePolicy | None = None,
        deferral: TeacherDeferral | None = None,
        *,
        max_chars: int | None,
    ) -> None:
        self.predictor, self.settings, self.student = predictor, settings, student
        self.labels: list[str] = list(predictor.labels)
        # A multi_label student answers a set per text (its labels at or above their thresholds);
        # the cli refuses a teacher for it, since the cascade's confidence is single-label.
        self.multi_label = bool(getattr(predictor, "multi_label", False))
        if self.multi_label and (policy is not None or deferral is not None):
            raise ValueError("a multi_label student cannot defer to a teacher: the cascade is single-label only")
        self.policy, self.deferral = policy, deferral
        self.max_chars = max_chars
        self.metrics = ServiceMetrics()
        self.started = time.time()
        self.shutdown_deadline: float | None = None
        self.stopped_cleanly = True
        self.student_batcher = MicroBatcher(
            self._predict,
            settings.max_batch_size,
            settings.max_wait_ms / 1000,
            name="student",
            on_batch=self.metrics.batch_size.observe,
            workers=settings.workers or 1,
            split_on_failure=True,
        )
        self.teacher_batcher = (
            # One worker: the deferral asks its teacher from one thread (an in-process model is not shared).
            MicroBatcher(self._ask_teacher, settings.teacher_batch_size, 0.0, name="teacher", workers=1)
            if deferral is not None
            else None
        )
        self.breaker = TeacherBreaker(
            settings.teacher_breaker_failures, settings.teacher_breaker_cooldown_s, self.metrics.breaker.state
        )

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.student_batcher.start()
        if self.teacher_batcher is not None:
            self.teacher_batcher.start()

    def begin_shutdown(self) -> None:
        """Start the clock of a graceful shutdown (SIGTERM): in-flight work has
        ``serve.shutdown_timeout_s`` from now, the HTTP server's draining included."""
        if self.shutdown_deadline is None:
            self.shutdown_deadline = time.monotonic() + self.settings.shutdown_timeout_s

    async def stop(self) -> bool:
        """Finish the running batches by the shutdown deadline: the student's, then the teacher's,
        whose answers reach the cache and the feedback file. True when all finished in time."""
        self.begin_shutdown()
        assert self.shutdown_deadline is not None
        finished = await self.student_batcher.stop(max(0.0, self.shutdown_deadline - time.monotonic()))
        if self.teacher_batcher is not None:
            left = max(0.0, self.shutdown_deadline - time.monotonic())
            if not await self.teacher_batcher.stop(left):
                log.warning(
                    "a teacher call was still running at the shutdown deadline; its texts are not in the feedback file"
                )
                finished = False
        self.stopped_cleanly = finished
        return finished

    def describe(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "student": self.student,
            "backend": type(self.predictor).__name__,
            "task": "multi_label" if self.multi_label else "single_label",
            "labels": self.labels,
            **({"thresholds": self._thresholds()} if self.multi_label else {}),
            "policy": self.policy.to_dict() if self.policy else None,
            "teacher": {**self.deferral.describe(), "breaker": self.breaker.describe()} if self.deferral else None,
            "settings": self.settings.__dict__,
            "uptime_s": round(time.time() - self.started, 1),
        }

    # -- workers (run on the batchers' threads) --------------------------------------------------
    def _predict(self, texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        # The student reads max_length tokens of a text: tokenizing more is work (and memory) for
        # nothing, so only a prefix of each text is tokenized, with the same ids as the whole text.
        probs = self.predictor.predict_encoded(self.predictor.batching.encode_prefixes(texts))
        self.metrics.student_latency.observe(time.perf_counter() - start)
        return probs

    def _ask_teacher(self, items: list[tuple[str, str, float]]) -> list[TeacherAnswer]:
        """(text, student label, confidence) items: the teacher's answers, recorded as feedback."""
        assert self.deferral is not None
        texts = [clean_text(text, self.max_chars) for text, _, _ in items]
        start = time.perf_counter()
        answers = self.deferral.label(texts)
        self.metrics.teacher_latency.observe(time.perf_counter() - start)
        failed = [answer.error for answer in answers if answer.label is None]
        if failed:
            log.warning("the teacher gave no label for %d of %d texts; first: %s", len(failed), len(texts), failed[0])
        self.deferral.record(texts, answers, [label for _, label, _ in items], [c for _, _, c in items])
        return answers

    # -- one request -----------------------------------------------------------------------------
    def _thresholds(self) -> dict[str, float]:
        return dict(zip(self.labels, map(float, self.predictor.thresholds), strict=True))

    def _label_sets(self, probs: np.ndarray) -> list[dict[str, Any]]:
        """A multi_label student's answers: each text's set, in config label order, and every label's
        own (sigmoid) probability; the same decision as ``predict`` (inference.predicted_labels)."""
        chosen = probs >= self.predictor.thresholds
        self.metrics.answered({STUDENT: len(probs), TEACHER: 0, FALLBACK: 0}, 0)
        return [
            {
                "labels": [label for label, on in zip(self.labels, row, strict=True) if on],
                "probabilities": dict(zip(self.labels, map(float, scores), strict=True)),
                "model": STUDENT,
            }
            for row, scores in zip(chosen, probs, strict=True)
        ]

    async def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        probs = await self.student_batcher.submit(texts)
        if self.multi_label:
            return self._label_sets(probs)
        if self.policy is not None:
            # The probabilities returned are the temperature-scaled ones the threshold was chosen on.
            probs = self.policy.scaled(probs)
            confidences = confidence_of(probs, self.policy.confidence)
            defer = confidences < self.policy.threshold
        else:
            confidences = probs.max(axis=1)
            defer = np.zeros(len(texts), dtype=bool)
        student_labels = [self.labels[i] for i in probs.argmax(axis=1)]
        results = [
            {
                "label": label,
                "probabilities": dict(zip(self.labels, map(float, row), strict=True)),
                "model": STUDENT,
                "confidence": float(confidence),
            }
            for label, row, confidence in zip(student_labels, probs, confidences, strict=True)
        ]
        deferred = np.flatnonzero(defer)
        if len(deferred) and self.teacher_batcher is not None:
            await self._defer(texts, deferred, results, student_labels, confidences)
        counts = {STUDENT: 0, TEACHER: 0, FALLBACK: 0}
        for result in results:
            counts[result["model"]] += 1
        self.metrics.answered(counts, len(deferred))
        return results

    async def _defer(self, texts, deferred, results, student_labels, confidences) -> None:
        assert self.teacher_batcher is not None
        waiting = self.teacher_batcher.pending_items
        if waiting + len(deferred) > self.settings.teacher_max_pending:
            self.metrics.teacher_errors.labels(reason="overload").inc(len(deferred))
            for i in deferred:
                results[i]["model"] = FALLBACK
            return
        if not self.breaker.allow():  # the teacher is down: no request waits for it to fail again
            self.metrics.teacher_errors.labels(reason="breaker_open").inc(len(deferred))
            for i in deferred:
                results[i]["model"] = FALLBACK
            return
        items = [(texts[i], student_labels[i], float(confidences[i])) for i in deferred]
        future = self.teacher_batcher.submit(items)
        answers: list[TeacherAnswer | None] = [None] * len(deferred)
        try:
            # shield: a timed-out request stops waiting, but the teacher's answer still reaches the
            # cache and the feedback file.
            answers = await asyncio.wait_for(asyncio.shield(future), self.settings.teacher_timeout_s)
        except TimeoutError:
            self.metrics.teacher_errors.labels(reason="timeout").inc(len(deferred))
            future.add_done_callback(_consume)
        except Exception as exc:  # the teacher call itself raised (cache unwritable, client bug, ...)
            log.warning("teacher failed for %d texts: %s", len(deferred), exc)
            self.metrics.teacher_errors.labels(reason="exception").inc(len(deferred))
        finally:  # even a cancelled request records its outcome: it may be the breaker's probe
            self.breaker.record(
                answered=sum(a is not None and not a.unanswered for a in answers),
                unanswered=sum(a is None or a.unanswered for a in answers),
            )
        for i, answer in zip(deferred, answers, strict=True):
            if answer is not None and answer.label is not None:
                results[i].update(
                    label=answer.label,
                    probabilities=answer.vote_shares,
                    model=TEACHER,
                    student_label=student_labels[i],
                )
            else:
                if answer is not None:
                    self.metrics.teacher_errors.labels(reason="request").inc()
                results[i]["model"] = FALLBACK


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def release_memory() -> None:
    """Hand freed heap memory back to the system. glibc keeps what a large request's texts took for
    reuse, so without this the process stays at its peak (the issue saw 417 MB -> 1,035 MB, kept)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _consume(future: asyncio.Future) -> None:
    """Retrieve a result nobody waits for any more, so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
