"""Getting a job's answers: from the response cache, else from the teacher through a thread pool (or a
provider batch), each stored the moment it is handled. Also the progress log, the teacher's busy-time
shares and the circuit breaker that stops a job failing the same way over and over."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import CacheWriteError, ResponseCache
from synthdistill.annotation.teachers.base import Completion, Request, Teacher
from synthdistill.schema import defaults

log = logging.getLogger(__name__)


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
# What a worker hands back per request: index, completion, latency, compute share, error, failure kind
CallOutcome = tuple[int, Completion | None, float, float, str | None, str | None]


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


def collect_answers(
    requests: list[Request],
    keys: list[str],
    teacher: Teacher,
    cache: ResponseCache,
    *,
    reask: Callable[[int, Completion], bool] | None = None,
    max_consecutive_failures: int | None,
    batch_missing: str | None,
) -> list[Outcome]:
    """Answers for every request: from the cache, else from the teacher, stored as they arrive.

    A cached answer for which ``reask`` is true is requested again and its entry replaced. The job
    stops sending at once (queued requests are cancelled; those in flight finish) when the cache
    takes no more writes, after ``max_consecutive_failures`` identical request failures in a row,
    or on an interrupt.
    """
    progress = Progress(len(requests))
    results, missing = _cached_answers(keys, cache, reask, progress)
    if hasattr(teacher, "complete_many"):  # a provider batch API: every missing request at once
        return _collect_batched(missing, requests, keys, teacher, cache, results, progress, batch_missing)
    run = _PooledRun(requests, keys, teacher, cache, results, progress, max_consecutive_failures)
    run.send(missing)
    run.raise_if_stopped(len(missing))
    return results


def _cached_answers(
    keys: list[str], cache: ResponseCache, reask: Callable[[int, Completion], bool] | None, progress: Progress
) -> tuple[list[Outcome], list[int]]:
    """The outcomes of the requests answered in the cache (an empty outcome for the others) and the
    indices of the requests still to send."""
    results: list[Outcome] = [(None, None, None, None, False)] * len(keys)
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
    return results, missing


class _PooledRun:
    """The requests missing from the cache, sent from a thread pool and handled here in the calling
    thread, which alone writes the cache, the results and the counters."""

    def __init__(
        self,
        requests: list[Request],
        keys: list[str],
        teacher: Teacher,
        cache: ResponseCache,
        results: list[Outcome],
        progress: Progress,
        max_consecutive_failures: int | None,
    ) -> None:
        self.requests, self.keys, self.teacher, self.cache = requests, keys, teacher, cache
        self.results, self.progress = results, progress
        # Backends that generate several sequences per step (transformers) offer complete_batch.
        self.complete_batch = getattr(teacher, "complete_batch", None)
        self.batch_size = getattr(teacher, "batch_size", 1) if self.complete_batch is not None else 1
        self.concurrency = max(1, teacher.max_concurrency)
        self.stop = threading.Event()
        # A worker sends only while fewer than ``concurrency`` answers are sent but not yet handled (stored)
        # here, so when the job decides to stop, at most that many requests are out.
        self.slots = threading.Semaphore(self.concurrency)
        self.clock = BusyClock()
        self.max_consecutive_failures = max_consecutive_failures
        self.breaker = CircuitBreaker(max_consecutive_failures)
        self.tripped: str | None = None  # the error that tripped the breaker
        self.tripped_after = 0
        self.write_error: CacheWriteError | None = None
        self.stored = self.lost = self.processed = 0
        self.futures: list[Future[list[CallOutcome] | None]] = []

    def send(self, missing: list[int]) -> None:
        """Send the requests at ``missing``, ``batch_size`` per call, and handle each answer as it comes."""
        chunks = [missing[i : i + self.batch_size] for i in range(0, len(missing), self.batch_size)]
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        self.futures = [pool.submit(self._call, chunk) for chunk in chunks]
        try:
            for future in as_completed(self.futures):
                if future.cancelled() or (outcomes := future.result()) is None:
                    continue
                for outcome in outcomes:
                    self._handle(outcome)
                self.slots.release()
        except BaseException:  # Ctrl-C: send nothing more; the answers stored so far are kept
            self._halt()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _call(self, indices: list[int]) -> list[CallOutcome] | None:
        """A worker's call for the requests at ``indices`` (None: the job stopped before it was sent)."""
        self.slots.acquire()
        if self.stop.is_set():  # picked up between the decision to stop and the cancellation
            self.slots.release()
            return None
        mark = self.clock.start()
        try:
            if self.complete_batch is not None and self.batch_size > 1:
                completions = self.complete_batch([self.requests[i] for i in indices])
            else:
                completions = [self.teacher.complete(self.requests[indices[0]])]
        except Exception as exc:  # recorded per item; the share check in annotate() decides the job
            share, elapsed = self.clock.stop(mark)
            error, kind = f"{type(exc).__name__}: {exc}", failure_kind(exc)
            return [(i, None, elapsed, share / len(indices), error, kind) for i in indices]
        share, elapsed = self.clock.stop(mark)
        return _call_outcomes(indices, completions, share, elapsed)

    def _handle(self, outcome: CallOutcome) -> None:
        """Store one answer and record its outcome; halt when the cache fails or the breaker trips."""
        index, completion, latency, share, error, kind = outcome
        if completion is not None:
            if self.write_error is not None:
                self.lost += 1  # paid for, but the cache takes no more: nothing more is written
                return
            try:
                self.cache.put(self.keys[index], self.requests[index].as_dict(), completion, latency, compute_s=share)
            except CacheWriteError as exc:
                self.write_error, self.lost = exc, self.lost + 1
                self._halt()
                return
            self.stored += 1
        self.processed += 1
        self.results[index] = (completion, latency, share, error, False)
        self.progress.update(failed=error is not None, cached=False)
        if self.breaker.record(kind) and self.tripped is None:
            self.tripped, self.tripped_after = error, self.breaker.run
            self._halt()

    def _halt(self) -> None:
        self.stop.set()
        for future in self.futures:
            future.cancel()
        self.slots.release(self.concurrency)  # wake the workers waiting for a slot: they see the stop and return

    def raise_if_stopped(self, missing: int) -> None:
        """Fail the job, with what was stored, lost and not sent, when the cache or the breaker stopped it."""
        not_sent = missing - self.processed - self.lost
        if self.write_error is not None:
            raise SynthDistillError(
                f"{self.write_error} This run stored {self.stored} new answers before the error; {self.lost} "
                f"answers received could not be stored (they are lost) and {not_sent} requests were not sent."
            ) from None
        if self.tripped is not None:
            raise SynthDistillError(
                f"stopped after {self.tripped_after} consecutive requests failed the same way "
                f"(annotate.max_consecutive_failures={self.max_consecutive_failures}): {self.tripped}. "
                f"{not_sent} requests were not sent; the {self.stored} answers received in this run and all earlier "
                f"ones are in the cache {self.cache.path}. Fix the cause and rerun: cached answers are not "
                "requested again."
            )


def _call_outcomes(indices: list[int], completions: list[Any], share: float, elapsed: float) -> list[CallOutcome]:
    """One call's outcome per request: a batch generated together shares its time equally among its prompts."""
    share, latency = share / len(indices), elapsed / len(indices)
    outcomes: list[CallOutcome] = []
    for i, answer in zip(indices, completions, strict=True):
        if isinstance(answer, Exception):  # complete_batch may fail one request and answer the others
            outcomes.append((i, None, latency, share, f"{type(answer).__name__}: {answer}", failure_kind(answer)))
        else:
            outcomes.append((i, answer, latency, share, None, None))
    return outcomes


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
