"""Prometheus metrics of one service, in a registry of its own (two apps in a process never mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

from synthdistill.serving.breaker import STATES

# Milliseconds to a minute: a student batch takes a few ms, a teacher answer up to the timeout.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "synthdistill_requests", "HTTP requests to /v1/classify by status code", ["status"], registry=r
        )
        self.texts = Counter("synthdistill_texts", "texts answered, by the model that answered", ["model"], registry=r)
        self.deferred = Counter("synthdistill_deferred_texts", "texts under the cascade threshold", registry=r)
        self.deferred_share = Gauge(
            "synthdistill_deferred_share", "deferred texts over all texts answered since start", registry=r
        )
        self.teacher_errors = Counter(
            "synthdistill_teacher_errors",
            "deferred texts the teacher did not label, by reason: request (failed or unparseable answer), "
            "timeout (no answer within serve.teacher_timeout_s), overload (serve.teacher_max_pending reached), "
            "exception (the teacher call raised), breaker_open (the circuit breaker kept it from the teacher)",
            ["reason"],
            registry=r,
        )
        self.breaker = Enum(
            "synthdistill_teacher_breaker",
            "the teacher's circuit breaker: closed (deferrals go to the teacher), open (the student answers "
            "alone until the cool-down ends), half_open (one request probes the teacher)",
            states=list(STATES),
            registry=r,
        )
        self.request_latency = Histogram(
            "synthdistill_request_latency_seconds", "time to answer a request", buckets=LATENCY_BUCKETS, registry=r
        )
        self.student_latency = Histogram(
            "synthdistill_student_batch_seconds", "student time per micro-batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.teacher_latency = Histogram(
            "synthdistill_teacher_batch_seconds",
            "teacher time per batch of deferred texts",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "synthdistill_student_batch_size", "texts per student micro-batch", buckets=BATCH_BUCKETS, registry=r
        )
        self._answered = 0
        self._deferred = 0

    def answered(self, model_counts: dict[str, int], deferred: int) -> None:
        for model, count in model_counts.items():
            if count:
                self.texts.labels(model=model).inc(count)
        self._answered += sum(model_counts.values())
        self._deferred += deferred
        if deferred:
            self.deferred.inc(deferred)
        self.deferred_share.set(self._deferred / self._answered if self._answered else 0.0)
